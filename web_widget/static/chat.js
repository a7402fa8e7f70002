/* The chat page: talks to /api/chat, renders text, buttons, the answer's source and handoff notices.
   Every bot text is inserted with textContent (never as HTML); links only from http(s) source URLs. */
(function () {
  "use strict";
  var log = document.getElementById("log");
  var form = document.getElementById("ask");
  var input = document.getElementById("question");
  var typing = document.getElementById("typing");
  var fontToggle = document.getElementById("font-toggle");
  var STORE = "hotline-chat-v1";

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)) || null; } catch (e) { return null; }
  }
  var state = load() || { sender: "web-" + Math.random().toString(36).slice(2) + Date.now().toString(36),
                          history: [], bigFont: false };
  function save() {
    state.history = state.history.slice(-100);
    try { localStorage.setItem(STORE, JSON.stringify(state)); } catch (e) { /* private mode: no memory */ }
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
    if (item.custom && item.custom.type === "handoff") {
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
    log.appendChild(row);
    log.scrollTop = log.scrollHeight;
  }

  function add(item, live) {
    state.history.push({ who: item.who, text: item.text || "", custom: item.custom || null,
                         buttons: item.buttons || null });
    save();
    render(item, live);
  }

  function send(body, shown) {
    add({ who: "me", text: shown }, false);
    body.sender = state.sender;
    typing.hidden = false;
    input.disabled = true;
    fetch("/api/chat", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        (data.messages || [{ text: data.error || "抱歉，出了点问题，请稍后再试。" }]).forEach(function (m) {
          add({ who: "bot", text: m.text, buttons: m.buttons, custom: m.custom }, true);
        });
      })
      .catch(function () { add({ who: "bot", text: "网络不太稳定，请稍后再试，或拨打12345。" }, true); })
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
    document.body.classList.toggle("big", !!state.bigFont);
    fontToggle.setAttribute("aria-pressed", String(!!state.bigFont));
  }
  fontToggle.addEventListener("click", function () { state.bigFont = !state.bigFont; save(); applyFont(); });

  applyFont();
  if (state.history.length) {
    state.history.forEach(function (item, i) { render(item, i === state.history.length - 1); });
  } else {
    add({ who: "bot", text: "您好！我是12345政务服务智能助手，请直接输入您要咨询的问题。" }, true);
  }
  input.focus();
})();
