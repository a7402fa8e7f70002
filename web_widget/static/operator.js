/* Operator console: answers while the operator types, copy / read-aloud / report per answer, each answer's
   service guide (办事指南) folded under it, work orders.
   Every value from the server is inserted with textContent, never as HTML: answers and work orders may hold
   hostile text. Links only from http(s) policy URLs and the server's own relative work-order paths. */
(function () {
  "use strict";
  var root = document.getElementById("console");
  if (!root || !root.dataset.searchUrl) { return; }

  var DEBOUNCE_MS = 250;
  var MAX_SEEN = 20;
  var MAX_QUERY = parseInt(root.dataset.maxQuery, 10) || 1000;
  var tokenMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = tokenMeta ? tokenMeta.getAttribute("content") : "";
  var urls = { search: root.dataset.searchUrl, report: root.dataset.reportUrl,
               orders: root.dataset.ordersUrl, login: root.dataset.loginUrl };

  function byId(id) { return document.getElementById(id); }
  var q = byId("q");
  var region = byId("region");
  var results = byId("results");
  var statusLine = byId("status");
  var notice = byId("notice");
  var noneFound = byId("none-found");
  var orderOpen = byId("order-open");
  var orderForm = byId("order-form");
  var orderError = byId("order-error");
  var orderEntries = byId("order-entries");
  var ordersList = byId("orders");

  var state = {
    timer: null, controller: null, seq: 0, requested: "", shown: "", data: null,
    seen: [], pickWhenShown: false, composing: false, forms: 0
  };

  // -- small helpers ------------------------------------------------------------

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text !== undefined && text !== null && text !== "") { node.textContent = String(text); }
    return node;
  }

  function button(text, cls) {
    var b = el("button", cls, text);
    b.type = "button";
    return b;
  }

  function safeUrl(url) {
    try {
      var u = new URL(url);
      return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null;
    } catch (e) { return null; }
  }

  // Scores are a cosine plus a lexical bonus and can pass 1.0: shown as a percentage that stops at 100%.
  function percent(score) {
    var n = Number(score);
    if (!isFinite(n)) { return ""; }
    return Math.floor(Math.min(Math.max(n, 0), 1) * 100) + "%";
  }

  function clear(node) { while (node.firstChild) { node.removeChild(node.firstChild); } }

  function setStatus(text, kind) {
    statusLine.textContent = text;
    statusLine.className = "status-line" + (kind ? " " + kind : "");
  }

  function announce(text) {
    // Emptied first so the same message ("已复制…") is announced again by screen readers.
    notice.textContent = "";
    window.setTimeout(function () { notice.textContent = text; }, 20);
  }

  function loginExpired() {
    clear(statusLine);
    statusLine.className = "status-line error";
    statusLine.appendChild(document.createTextNode("登录已过期，请"));
    var a = el("a", "", "重新登录");
    a.href = urls.login;
    statusLine.appendChild(a);
    statusLine.appendChild(document.createTextNode("后继续。"));
  }

  function api(url, options) {
    var opts = options || {};
    opts.credentials = "same-origin";
    opts.headers = opts.headers || {};
    opts.headers.Accept = "application/json";
    if (opts.body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.headers["X-CSRF-Token"] = csrf;
    }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (data) {
        if (r.status === 401) { loginExpired(); }
        return { status: r.status, data: data || {} };
      });
    });
  }

  function post(url, body) { return api(url, { method: "POST", body: JSON.stringify(body) }); }

  // -- search as the operator types ----------------------------------------------

  function query() { return q.value.trim(); }
  function searchKey() { return query().slice(0, MAX_QUERY) + "\u0000" + region.value.trim(); }

  function schedule() {
    window.clearTimeout(state.timer);
    if (state.composing) { return; }  // an input method is still choosing characters
    state.timer = window.setTimeout(runSearch, DEBOUNCE_MS);
  }

  function runSearch() {
    window.clearTimeout(state.timer);
    var text = query();
    var key = searchKey();
    if (!text) { clearAll(false); return; }
    if (key === state.requested) { return; }  // asked already; its answer is on its way or shown
    if (state.controller) { state.controller.abort(); }
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    state.controller = controller;
    state.requested = key;
    var seq = ++state.seq;
    var cut = text.length > MAX_QUERY;
    var params = new URLSearchParams();
    params.set("q", text.slice(0, MAX_QUERY));
    if (region.value.trim()) { params.set("region", region.value.trim()); }
    results.setAttribute("aria-busy", "true");
    setStatus("正在查询…");
    api(urls.search + "?" + params.toString(), controller ? { signal: controller.signal } : {})
      .then(function (reply) {
        if (seq !== state.seq) { return; }  // a newer question was asked meanwhile: show only the latest
        state.controller = null;
        results.setAttribute("aria-busy", "false");
        if (reply.status === 401) { state.requested = ""; return; }
        if (reply.status !== 200) {
          state.requested = "";
          setStatus(reply.data.error || ("查询失败（" + reply.status + "），请重试"), "error");
          return;
        }
        show(reply.data, key, cut);
      })
      .catch(function (err) {
        if ((err && err.name === "AbortError") || seq !== state.seq) { return; }
        state.requested = "";
        results.setAttribute("aria-busy", "false");
        setStatus("网络异常，查询失败，请按 Enter 重试", "error");
      });
  }

  function show(data, key, cut) {
    state.data = data;
    state.shown = key;
    clear(results);
    var hits = data.hits || [];
    hits.forEach(function (hit) {
      if (hit.key && state.seen.indexOf(hit.key) < 0 && state.seen.length < MAX_SEEN) { state.seen.push(hit.key); }
    });
    renderSeen();
    var parts = [hits.length ? (data.decision_text || "") : "没有找到适用的条目，可新建工单"];
    if (data.truncated || cut) { parts.push("问题超过" + MAX_QUERY + "字，只按前" + MAX_QUERY + "字查询"); }
    parts.push("知识库版本 " + data.kb_version);
    setStatus(parts.filter(Boolean).join(" · "), hits.length ? data.decision : "no_answer");
    hits.forEach(function (hit, i) { results.appendChild(card(hit, i, data)); });
    // A new question may be reported again: drop the last one's form or confirmation.
    Array.prototype.forEach.call(noneFound.querySelectorAll(".report-form, .done"), function (n) {
      n.parentNode.removeChild(n);
    });
    byId("none-found-button").disabled = false;
    noneFound.hidden = false;
    if (state.pickWhenShown) {
      state.pickWhenShown = false;
      pick(0);
    }
  }

  function pick(index) {
    var target = byId("hit-" + (index + 1));
    if (!target) { announce("没有可选的答案"); return; }
    Array.prototype.forEach.call(results.querySelectorAll(".hit.picked"), function (c) { c.classList.remove("picked"); });
    target.classList.add("picked");
    target.focus();
    if (target.scrollIntoView) { target.scrollIntoView({ block: "nearest" }); }
  }

  function clearAll(focus) {
    window.clearTimeout(state.timer);
    if (state.controller) { state.controller.abort(); state.controller = null; }
    state.seq += 1;
    state.requested = state.shown = "";
    state.data = null;
    state.pickWhenShown = false;
    clear(results);
    results.setAttribute("aria-busy", "false");
    noneFound.hidden = true;
    setStatus("");
    if (focus) {
      q.value = "";
      state.seen = [];
      resetOrderForm();
      q.focus();
    }
  }

  // A new caller starts from an empty work order: nothing of the previous call is carried over.
  function resetOrderForm() {
    orderForm.reset();
    orderForm.hidden = true;
    orderOpen.setAttribute("aria-expanded", "false");
    orderError.hidden = true;
    renderSeen();
  }

  // -- one result card ------------------------------------------------------------

  function metaList(hit) {
    var dl = el("dl", "meta");
    function row(name, value) {
      if (!value) { return; }
      dl.appendChild(el("dt", "", name));
      var dd = el("dd");
      if (typeof value === "string") { dd.textContent = value; } else { dd.appendChild(value); }
      dl.appendChild(dd);
    }
    var policy = hit.policy || {};
    var basis = [policy.title, policy.number].filter(Boolean).join(" ");
    var link = policy.url && safeUrl(policy.url);
    if (link) {
      var span = el("span", "", basis ? basis + " " : "");
      var a = el("a", "", "查看原文");
      a.href = link;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      span.appendChild(a);
      row("政策依据", span);
    } else {
      row("政策依据", basis);
    }
    row("承办单位", hit.department);
    row("生效日期", hit.effective_date);
    row("失效日期", hit.expiry_date || (hit.effective_date ? "长期有效" : ""));
    row("适用地区", (hit.regions || []).join("、") || "不限");
    row("分类", hit.category);
    row("编号", hit.key);
    return dl;
  }

  function guideItems(hit) {
    return (hit.guide || []).filter(function (g) { return g && g.label && g.text; });
  }

  // The service guide (办事指南): collapsed under the answer, one row per aspect that has text.
  function guideBlock(hit, n) {
    var items = guideItems(hit);
    if (!items.length) { return null; }
    var box = el("details", "guide");
    box.id = "hit-" + n + "-guide";
    box.appendChild(el("summary", "", "办事指南（" + items.length + "项：" +
      items.map(function (g) { return g.label; }).join("、") + "）"));
    var dl = el("dl", "guide-list");
    items.forEach(function (g) {
      var dt = el("dt", "", g.label);
      dt.dataset.aspect = String(g.name || "");
      dl.appendChild(dt);
      dl.appendChild(el("dd", "answer", g.text));
    });
    box.appendChild(dl);
    return box;
  }

  function withGuide(hit) {
    var parts = [String(hit.answer || "")];
    guideItems(hit).forEach(function (g) { parts.push(g.label + "：" + g.text); });
    return parts.join("\n\n");
  }

  function card(hit, index, data) {
    var n = index + 1;
    var art = el("article", "card hit");
    art.id = "hit-" + n;
    art.tabIndex = -1;
    art.dataset.key = hit.key;
    art.setAttribute("aria-labelledby", "hit-" + n + "-q");

    var head = el("div", "hit-head");
    var rank = el("span", "rank", String(n));
    rank.setAttribute("aria-label", "第" + n + "条");
    head.appendChild(rank);
    var title = el("h3", "", hit.question);
    title.id = "hit-" + n + "-q";
    head.appendChild(title);
    head.appendChild(el("span", "score", "相似度 " + percent(hit.score)));
    art.appendChild(head);
    if (hit.matched_phrasing && hit.matched_phrasing !== hit.question) {
      art.appendChild(el("p", "matched muted", "匹配问法：" + hit.matched_phrasing));
    }
    art.appendChild(el("div", "answer", hit.answer));
    var guide = guideBlock(hit, n);
    if (guide) { art.appendChild(guide); }

    var spoken = el("div", "spoken");
    spoken.id = "hit-" + n + "-spoken";
    spoken.hidden = true;
    spoken.appendChild(el("strong", "", "朗读版（照此念给来电人）"));
    var lines = el("ol");
    (hit.spoken || []).forEach(function (s) { lines.appendChild(el("li", "", s)); });
    spoken.appendChild(lines);
    var aspects = guideItems(hit);
    if (aspects.length) {
      spoken.appendChild(el("strong", "", "办事指南（来电人追问时照读）"));
      var guideLines = el("ol", "guide-spoken");
      aspects.forEach(function (g) {
        (g.spoken || [g.label + "：" + g.text]).forEach(function (s) { guideLines.appendChild(el("li", "", s)); });
      });
      spoken.appendChild(guideLines);
    }
    art.appendChild(spoken);
    art.appendChild(metaList(hit));

    var actions = el("div", "card-actions");
    var copy = button("复制答案", "copy");
    copy.setAttribute("aria-keyshortcuts", "Alt+" + n);
    copy.title = "快捷键 Alt+" + n;
    copy.addEventListener("click", function () { copyAnswer(index); });
    var read = button("朗读版", "read");
    read.setAttribute("aria-expanded", "false");
    read.setAttribute("aria-controls", spoken.id);
    read.addEventListener("click", function () {
      spoken.hidden = !spoken.hidden;
      read.setAttribute("aria-expanded", String(!spoken.hidden));
    });
    var used = button("已用此条答复", "used");
    used.addEventListener("click", function () {
      used.disabled = true;
      post(urls.report, { query: data.query, outcome: "used", entry_key: hit.key, kb_version: data.kb_version })
        .then(function (reply) {
          if (reply.status === 201) {
            used.textContent = "已记录：已用此条答复";
            announce("已记录：第" + n + "条已用于答复");
          } else {
            used.disabled = false;
            if (reply.status !== 401) { announce(reply.data.error || "记录失败，请重试"); }
          }
        })
        .catch(function () { used.disabled = false; announce("网络异常，记录失败，请重试"); });
    });
    var wrong = button("未找到/答案有误", "wrong");
    wrong.setAttribute("aria-expanded", "false");
    wrong.addEventListener("click", function () { openReport(art, wrong, hit, data); });
    var buttons = [copy];
    if (aspects.length) {
      var copyAll = button("复制答案和办事指南", "copy-guide");
      copyAll.addEventListener("click", function () { copyAnswer(index, true); });
      buttons.push(copyAll);
    }
    [read, used, wrong].forEach(function (b) { buttons.push(b); });
    buttons.forEach(function (b) { actions.appendChild(b); });
    art.appendChild(actions);
    return art;
  }

  // -- copying --------------------------------------------------------------------

  function fallbackCopy(text) {
    var active = document.activeElement;
    var area = el("textarea", "copy-buffer");
    area.value = text;
    area.setAttribute("readonly", "");
    area.setAttribute("aria-hidden", "true");
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    if (active && active.focus) { active.focus(); }
    return ok;
  }

  function copyText(text) {
    // The async clipboard needs a secure context (https or localhost); intranet http gets the fallback.
    if (navigator.clipboard && navigator.clipboard.writeText && window.isSecureContext) {
      return navigator.clipboard.writeText(text).then(
        function () { return true; },
        function () { return fallbackCopy(text); }
      );
    }
    return Promise.resolve(fallbackCopy(text));
  }

  function copyAnswer(index, guide) {
    var hits = (state.data && state.data.hits) || [];
    var hit = hits[index];
    if (!hit) { announce("没有第" + (index + 1) + "条答案"); return; }
    var what = guide ? "答案和办事指南" : "答案";
    copyText(guide ? withGuide(hit) : hit.answer).then(function (ok) {
      announce(ok ? "已复制第" + (index + 1) + "条" + what : "复制失败，请手动选中答案复制");
    });
  }

  // -- reporting "not found" / "wrong" --------------------------------------------

  function openReport(container, trigger, hit, data) {
    var existing = container.querySelector(".report-form");
    if (existing) { existing.querySelector("textarea").focus(); return; }
    var id = "report-" + (++state.forms);
    var form = el("form", "report-form");
    form.noValidate = true;
    var outcome = "not_found";
    if (hit) {
      var set = el("fieldset");
      set.appendChild(el("legend", "", "哪种情况？"));
      [["wrong", "答案有误（内容错误或已过期）"], ["not_found", "未找到（此条不是来电人要问的）"]].forEach(function (o, i) {
        var label = el("label");
        var radio = el("input");
        radio.type = "radio";
        radio.name = id + "-outcome";
        radio.value = o[0];
        radio.checked = i === 0;
        label.appendChild(radio);
        label.appendChild(document.createTextNode(" " + o[1]));
        set.appendChild(label);
      });
      form.appendChild(set);
    }
    var label = el("label", "", "原因（必填，最多500字）");
    label.htmlFor = id + "-reason";
    form.appendChild(label);
    var reason = el("textarea");
    reason.id = id + "-reason";
    reason.maxLength = 500;
    reason.required = true;
    reason.placeholder = "例如：来电人问的是异地转移，条目只讲了本地办理";
    form.appendChild(reason);
    var error = el("p", "flash error");
    error.setAttribute("role", "alert");
    error.hidden = true;
    form.appendChild(error);
    var row = el("div", "actions");
    var send = el("button", "primary", "提交");
    send.type = "submit";
    var cancel = button("取消");
    row.appendChild(send);
    row.appendChild(cancel);
    form.appendChild(row);

    function close() {
      form.parentNode.removeChild(form);
      trigger.setAttribute("aria-expanded", "false");
      trigger.focus();
    }
    cancel.addEventListener("click", close);
    form.addEventListener("keydown", function (event) {
      if (event.key === "Escape") { event.preventDefault(); event.stopPropagation(); close(); }
    });
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var checked = form.querySelector("input[type=radio]:checked");
      outcome = checked ? checked.value : "not_found";
      var text = reason.value.trim();
      if (!text) {
        error.textContent = "请填写原因，方便知识库编辑补充或更正";
        error.hidden = false;
        reason.focus();
        return;
      }
      send.disabled = true;
      post(urls.report, { query: data ? data.query : query(), outcome: outcome, entry_key: hit ? hit.key : "",
                          reason: text, kb_version: data ? data.kb_version : null })
        .then(function (reply) {
          if (reply.status === 201) {
            var done = el("p", "done", outcome === "wrong" ? "已记录：答案有误，已转知识库编辑" : "已记录：未找到答案，已转知识库编辑");
            form.parentNode.replaceChild(done, form);
            trigger.disabled = true;
            trigger.setAttribute("aria-expanded", "false");
            announce(done.textContent);
            return;
          }
          send.disabled = false;
          if (reply.status !== 401) {
            error.textContent = reply.data.error || "记录失败，请重试";
            error.hidden = false;
          }
        })
        .catch(function () { send.disabled = false; error.textContent = "网络异常，记录失败，请重试"; error.hidden = false; });
    });
    trigger.setAttribute("aria-expanded", "true");
    container.appendChild(form);
    reason.focus();
  }

  // -- work orders --------------------------------------------------------------------

  function renderSeen() {
    clear(orderEntries);
    if (!state.seen.length) { orderEntries.appendChild(el("li", "muted", "（尚未查看条目）")); return; }
    state.seen.forEach(function (key) { orderEntries.appendChild(el("li", "", key)); });
  }

  function field(name) { return orderForm.elements.namedItem(name); }

  function openOrderForm() {
    orderForm.hidden = false;
    orderOpen.setAttribute("aria-expanded", "true");
    var text = query().slice(0, MAX_QUERY);
    if (text) { field("question").value = text; }
    if (!field("description").value.trim()) { field("description").value = text; }
    if (!field("region").value.trim()) { field("region").value = region.value.trim(); }
    renderSeen();
    orderError.hidden = true;
    field("description").focus();
  }

  function closeOrderForm() {
    orderForm.hidden = true;
    orderOpen.setAttribute("aria-expanded", "false");
    orderOpen.focus();
  }

  function orderFailed(message, name) {
    orderError.textContent = message;
    orderError.hidden = false;
    var target = name && field(name);
    if (target && target.focus) { target.focus(); }
  }

  function submitOrder(event) {
    event.preventDefault();
    var body = {
      question: field("question").value.trim(),
      description: field("description").value.trim(),
      kind: field("kind").value,
      address: field("address").value.trim(),
      happened: field("happened").value.trim(),
      name: field("name").value.trim(),
      phone: field("phone").value.trim(),
      region: field("region").value.trim(),
      entries: state.seen.slice()
    };
    if (!body.description) { orderFailed("请填写问题描述", "description"); return; }
    var submit = orderForm.querySelector("button[type=submit]");
    submit.disabled = true;
    post(urls.orders, body)
      .then(function (reply) {
        submit.disabled = false;
        if (reply.status !== 201) {
          if (reply.status !== 401) { orderFailed(reply.data.error || "工单未能提交，请重试", reply.data.field); }
          return;
        }
        state.seen = [];
        resetOrderForm();
        clear(notice);
        notice.appendChild(document.createTextNode("工单已创建："));
        var a = el("a", "", reply.data.number);
        if (typeof reply.data.url === "string" && reply.data.url.charAt(0) === "/") { a.href = reply.data.url; }
        notice.appendChild(a);
        // The responsibility list's suggestion, so the operator can tell the caller who will handle it.
        if (reply.data.suggested_department) {
          notice.appendChild(document.createTextNode("（" + String(reply.data.kind || "") + "，建议承办部门：" +
            String(reply.data.suggested_department) + "）"));
        }
        loadOrders();
        orderOpen.focus();
      })
      .catch(function () { submit.disabled = false; orderFailed("网络异常，工单未能提交，请重试"); });
  }

  function loadOrders() {
    api(urls.orders).then(function (reply) {
      if (reply.status !== 200) { return; }
      clear(ordersList);
      var orders = reply.data.work_orders || [];
      if (!orders.length) { ordersList.appendChild(el("li", "muted", "暂无待处理工单")); return; }
      orders.forEach(function (o) {
        var li = el("li");
        var a = el("a", "", o.number);
        if (typeof o.url === "string" && o.url.charAt(0) === "/") { a.href = o.url; }
        li.appendChild(a);
        li.appendChild(el("span", "muted", " " + String(o.created_at || "").replace("T", " ").slice(0, 16)));
        var text = String(o.description || "");
        li.appendChild(el("div", "", text.length > 80 ? text.slice(0, 80) + "…" : text));
        var who = [o.name, o.phone, o.region].filter(Boolean).join(" · ");
        if (who) { li.appendChild(el("div", "muted", who)); }
        ordersList.appendChild(li);
      });
    }).catch(function () { /* the list is a convenience; the next refresh tries again */ });
  }

  // -- keyboard -----------------------------------------------------------------------

  var DIGITS = { Digit1: 0, Digit2: 1, Digit3: 2, Digit4: 3, Digit5: 4,
                 Numpad1: 0, Numpad2: 1, Numpad3: 2, Numpad4: 3, Numpad5: 4 };

  document.addEventListener("keydown", function (event) {
    if (event.altKey && !event.ctrlKey && !event.metaKey && Object.prototype.hasOwnProperty.call(DIGITS, event.code)) {
      event.preventDefault();  // the code, not the key: Alt+digit types other characters on some layouts
      copyAnswer(DIGITS[event.code]);
      return;
    }
    if (event.key === "Escape" && !event.defaultPrevented) {
      if (!orderForm.hidden && orderForm.contains(event.target)) { closeOrderForm(); return; }
      clearAll(true);
    }
  });

  byId("ask").addEventListener("submit", function (event) {
    event.preventDefault();
    if (!query()) { return; }
    if (state.shown === searchKey()) { pick(0); return; }
    state.pickWhenShown = true;
    runSearch();
  });
  q.addEventListener("input", schedule);
  q.addEventListener("compositionstart", function () { state.composing = true; });
  q.addEventListener("compositionend", function () { state.composing = false; schedule(); });
  region.addEventListener("input", schedule);
  region.addEventListener("change", schedule);
  byId("none-found-button").addEventListener("click", function () {
    openReport(noneFound, byId("none-found-button"), null, state.data);
  });
  orderOpen.addEventListener("click", function () { if (orderForm.hidden) { openOrderForm(); } else { closeOrderForm(); } });
  byId("order-cancel").addEventListener("click", closeOrderForm);
  orderForm.addEventListener("submit", submitOrder);
  byId("orders-refresh").addEventListener("click", loadOrders);
  byId("new-call").addEventListener("click", function () { clearAll(true); setStatus("新来电：已清空查询和工单"); });

  renderSeen();
  loadOrders();
  if (query()) { schedule(); }  // the browser kept the text across a reload
})();
