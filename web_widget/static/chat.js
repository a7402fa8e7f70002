/* The chat page: talks to /api/chat, renders text, buttons, the answer's source and handoff notices.
   Every bot text is inserted with textContent (never as HTML); links only from http(s) source URLs.
   The conversation is kept in localStorage so it survives reloads, but only for a day after the last
   message, never with what the citizen types into the work-order form (description, name, phone),
   and "结束对话" removes it at once: a shared or public computer must not show the next person. */
(function () {
  "use strict";
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("question");
  var typing = document.getElementById("typing");
  var fontToggle = document.getElementById("font-toggle");
  var endButton = document.getElementById("end-chat");
  var STORE = "hotline-chat-v1";
  var FONT_STORE = "hotline-chat-font";  // a preference, not the conversation: kept when a conversation ends
  var KEEP_MS = 24 * 3600 * 1000;  // stored history is forgotten a day after the last message
  // The work-order forms' questions (bot/domain.yml utter_ask_description / contact_name / contact_phone,
  // utter_ask_intake_form_description, actions/replies.py INTAKE_SUMMARY, utter_ask_order_number): from one
  // of them until the work order is made (or the next sourced answer), nothing of the conversation is stored.
  var FORM_PROMPTS = ["并登记工单", "怎么称呼您", "留下联系电话", "为您登记", "请核对您的工单", "为您查询工单进度"];
  // Phone, ID and other long numbers said outside a form (a request in one sentence) are never stored either.
  var LONG_NUMBER = /(?<![A-Za-z\d])\d[\d\s-]{5,}[\dXx]/g;  // not a GD work-order number

  function newState() {
    return { sender: "web-" + Math.random().toString(36).slice(2) + Date.now().toString(36),
             history: [], inForm: false, updated: Date.now() };
  }
  function load() {
    var stored = null;
    try { stored = JSON.parse(localStorage.getItem(STORE)); } catch (e) { stored = null; }
    if (!stored || !stored.history || typeof stored.updated !== "number" || Date.now() - stored.updated > KEEP_MS) {
      try { localStorage.removeItem(STORE); } catch (e) { /* storage unavailable */ }
      return null;
    }
    return stored;
  }
  var state = load() || newState();
  var bigFont = false;
  try { bigFont = localStorage.getItem(FONT_STORE) === "1"; } catch (e) { bigFont = false; }
  function save() {
    state.history = state.history.slice(-100);
    state.updated = Date.now();
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode: no memory */ }
  }
  function asksForContact(text) {
    return FORM_PROMPTS.some(function (p) { return (text || "").indexOf(p) !== -1; });
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) { node.className = cls; }
    if (text) { node.textContent = text; }
    return node;
  }

  function safeUrl(url) {
    try { var u = new URL(url); return (u.protocol === "https:" || u.protocol === "http:") ? u.href : null; }
    catch (e) { return null; }
  }

  function renderSource(src) {
    var card = el("div", "source");
    card.setAttribute("aria-label", "答案来源");
    var rows = [["承办单位", src.department], ["政策依据", [src.policy_title, src.policy_number].filter(Boolean).join(" ")],
                ["生效日期", src.effective_date]];
    rows.forEach(function (r) { if (r[1]) { card.appendChild(el("div", "source-row", r[0] + "：" + r[1])); } });
    var link = src.policy_url && safeUrl(src.policy_url);
    if (link) {
      var a = el("a", "source-link", "查看政策原文");
      a.href = link; a.target = "_blank"; a.rel = "noopener noreferrer";
      card.appendChild(a);
    }
    return card;
  }

  function render(item, live) {
    var row = el("div", "msg " + item.who);
    if (item.text) {
      var bubble = el("div", "bubble");
      item.text.split("\n").forEach(function (line, i) {
        if (i) { bubble.appendChild(document.createElement("br")); }
        bubble.appendChild(document.createTextNode(line));
      });
      row.appendChild(bubble);
    }
    if (item.custom && item.custom.type === "source") { row.appendChild(renderSource(item.custom)); }
    if (item.custom && (item.custom.type === "handoff" || item.custom.type === "work_order")) {
      row.appendChild(el("div", "handoff", item.custom.work_order
        ? "工单号：" + item.custom.work_order + "（可拨打12345查询进度）" : "如需人工服务，请拨打12345。"));
    }
    if (item.buttons && item.buttons.length && live) {
      var group = el("div", "choices");
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "请选择");
      item.buttons.forEach(function (b) {
        var btn = el("button", "choice", b.title);
        btn.type = "button";
        btn.addEventListener("click", function () {
          Array.prototype.forEach.call(group.querySelectorAll("button"), function (x) { x.disabled = true; });
          send({ payload: b.payload }, b.title);
        });
        group.appendChild(btn);
      });
      row.appendChild(group);
    }
    var previous = log.lastElementChild;
    if (item.custom && item.custom.type === "source" && previous && previous.classList.contains("bot")) {
      var waiting = previous.querySelector(".choices");
      if (waiting) { row.appendChild(waiting); }  // 有用 / 没用 come after the answer and its source card
    }
    log.appendChild(row);
    return row;
  }

  // A new answer is read from its first line: scroll its start to the top of the log, not to the bottom.
  function showFrom(row) {
    if (!row) { return; }
    log.scrollTop += row.getBoundingClientRect().top - log.getBoundingClientRect().top - 8;
  }

  function add(item, live) {
    var custom = item.custom || null;
    if (custom && (custom.type === "handoff" || custom.type === "work_order" || custom.type === "source")) {
      state.inForm = false;  // the form ended: with the work order's number (or a failed one), or with an answer
    } else if (item.who === "bot" && asksForContact(item.text)) {
      var last = state.history[state.history.length - 1];
      if (!state.inForm && last && last.who === "me") {
        state.history.pop();  // the message that opened the form may hold the request itself, name and phone
      }
      state.inForm = true;
    }
    if (!state.inForm) {
      var kept = (item.text || "").replace(LONG_NUMBER, "***");
      state.history.push({ who: item.who, text: kept, custom: custom, buttons: item.buttons || null });
    }
    save();
    return render(item, live);
  }

  function show(text) {  // told to the citizen, never stored
    render({ who: "bot", text: text }, false);
    log.scrollTop = log.scrollHeight;
  }

  function endConversation() {
    try { localStorage.removeItem(STORE); } catch (e) { /* storage unavailable */ }
    state = newState();
    while (log.firstChild) { log.removeChild(log.firstChild); }
    show("对话已结束，本机保存的对话记录（包括您留下的姓名、电话）已全部清除。如需继续咨询，请直接输入新的问题。");
    input.value = "";
    input.focus();
  }

  function send(body, shown) {
    add({ who: "me", text: shown }, false);
    log.scrollTop = log.scrollHeight;
    body.sender = state.sender;
    typing.hidden = false;
    input.disabled = true;
    fetch("/api/chat", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        var first = null;
        (data.messages || [{ text: data.error || "抱歉，出了点问题，请稍后再试。" }]).forEach(function (m) {
          var row = add({ who: "bot", text: m.text, buttons: m.buttons, custom: m.custom }, true);
          first = first || row;
        });
        showFrom(first);
      })
      .catch(function () { showFrom(add({ who: "bot", text: "网络不太稳定，请稍后再试，或拨打12345。" }, true)); })
      .then(function () { typing.hidden = true; input.disabled = false; input.focus(); });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (!text) { return; }
    input.value = "";
    send({ message: text }, text);
  });

  function applyFont() {
    document.body.classList.toggle("big", bigFont);
    fontToggle.setAttribute("aria-pressed", String(bigFont));
    // The loader on the host page makes its frame larger in large-font mode (static/hotline-widget.js).
    if (window.parent !== window) { window.parent.postMessage({ hotline: "font", big: bigFont }, "*"); }
  }
  // The loader asks for the focus when a citizen opens the widget (by keyboard too): straight into the input.
  window.addEventListener("message", function (event) {
    if (event.source === window.parent && event.data && event.data.hotline === "focus") { input.focus(); }
  });
  fontToggle.addEventListener("click", function () {
    bigFont = !bigFont;
    try { localStorage.setItem(FONT_STORE, bigFont ? "1" : "0"); } catch (e) { /* private mode */ }
    applyFont();
  });
  endButton.addEventListener("click", endConversation);

  applyFont();
  if (state.history.length) {
    var rows = state.history.map(function (item, i) { return render(item, i === state.history.length - 1); });
    // After a reload the log opens at the latest exchange: the citizen's last question and the start of its answer.
    var mine = rows.filter(function (row) { return row.classList.contains("me"); });
    showFrom(mine.length ? mine[mine.length - 1] : rows[rows.length - 1]);
  } else {  // the greeting alone stores nothing: a visit without a question leaves no trace
    show("您好！我是12345政务服务智能助手，请直接输入您要咨询的问题。");
  }
  input.focus();
})();
