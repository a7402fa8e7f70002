/* Staff pages, for every page of the admin and the console (no inline script: the CSP allows none).
   1. Forms with data-confirm (rollback, archive, discarding a draft, disabling a user) ask in a dialog first and
      post confirmed=1; without this script the server shows its own confirmation page instead.
   2. The entry form keeps what was typed when the session has ended: it asks the server before posting, keeps the
      fields in this tab's sessionStorage, sends the person to sign in (会话已过期) and, back on the same form,
      puts the text back. */
(function () {
  "use strict";

  // -- 1. confirmations --------------------------------------------------------------

  var dialog = null;

  function confirmDialog() {
    if (dialog) { return dialog; }
    dialog = document.createElement("dialog");
    dialog.id = "confirm-dialog";
    dialog.className = "confirm-dialog";
    dialog.setAttribute("aria-labelledby", "confirm-text");
    var text = document.createElement("p");
    text.id = "confirm-text";
    var row = document.createElement("div");
    row.className = "actions";
    var ok = document.createElement("button");
    ok.type = "button";
    ok.id = "confirm-ok";
    ok.className = "danger";
    var cancel = document.createElement("button");
    cancel.type = "button";
    cancel.id = "confirm-cancel";
    cancel.textContent = "取消";
    row.appendChild(ok);
    row.appendChild(cancel);
    dialog.appendChild(text);
    dialog.appendChild(row);
    cancel.addEventListener("click", function () { dialog.close("cancel"); });
    ok.addEventListener("click", function () { dialog.close("ok"); });
    document.body.appendChild(dialog);
    return dialog;
  }

  function submitConfirmed(form, submitter) {
    var flag = form.querySelector('input[name="confirmed"]');
    if (!flag) {
      flag = document.createElement("input");
      flag.type = "hidden";
      flag.name = "confirmed";
      form.appendChild(flag);
    }
    flag.value = "1";
    form.dataset.confirmed = "1";
    if (form.requestSubmit) { form.requestSubmit(submitter || undefined); } else { form.submit(); }
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form || !form.hasAttribute || !form.hasAttribute("data-confirm") || form.dataset.confirmed === "1") {
      return;
    }
    var box = confirmDialog();
    if (typeof box.showModal !== "function") {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
      return;  // confirmed: posted as is, and the server's confirmation page asks once more
    }
    event.preventDefault();
    var submitter = event.submitter || null;
    box.querySelector("#confirm-text").textContent = form.getAttribute("data-confirm");
    box.querySelector("#confirm-ok").textContent = form.getAttribute("data-confirm-button") || "确定";
    box.returnValue = "";
    box.onclose = function () {
      if (box.returnValue === "ok") {
        submitConfirmed(form, submitter);
      } else if (submitter && submitter.focus) {
        submitter.focus();
      }
    };
    box.showModal();
    box.querySelector("#confirm-cancel").focus();  // the safe choice has the focus
  }, true);

  // -- 2. a draft's text survives the end of a session -----------------------------------------

  var KEPT = "hotline-draft-kept";
  var KEEP_MS = 12 * 3600 * 1000;

  function readKept() {
    try { return JSON.parse(window.sessionStorage.getItem(KEPT) || "null"); } catch (e) { return null; }
  }
  function writeKept(value) {
    try {
      if (value) { window.sessionStorage.setItem(KEPT, JSON.stringify(value)); }
      else { window.sessionStorage.removeItem(KEPT); }
    } catch (e) { /* storage off: nothing kept */ }
  }

  // Only what a person types: hidden fields (token, versions) come fresh from the page they sign back in to.
  function typedFields(form) {
    return Array.prototype.filter.call(form.elements, function (f) {
      return f.name && (f.tagName === "TEXTAREA" || (f.tagName === "INPUT" && f.type !== "hidden" && f.type !== "submit"));
    });
  }

  function keep(form) {
    var values = {};
    typedFields(form).forEach(function (f) { values[f.name] = f.value; });
    writeKept({ key: form.getAttribute("data-draft-key"), values: values, at: Date.now(), signedIn: false });
  }

  var onLoginPage = /\/staff\/login$/.test(window.location.pathname);
  var kept = readKept();
  if (kept && onLoginPage) {
    kept.signedIn = true;  // the next form page is reached by signing in again: restore there
    writeKept(kept);
  }

  var form = document.getElementById("entry-form");
  if (form && kept && !onLoginPage) {
    var fresh = Date.now() - (kept.at || 0) < KEEP_MS;
    if (kept.signedIn && fresh && kept.key === form.getAttribute("data-draft-key")) {
      typedFields(form).forEach(function (f) {
        if (Object.prototype.hasOwnProperty.call(kept.values, f.name)) { f.value = kept.values[f.name]; }
      });
      var note = document.createElement("p");
      note.id = "restored";
      note.className = "flash warn";
      note.setAttribute("role", "alert");
      note.textContent = "会话已过期：已恢复您重新登录前输入的内容，尚未保存，请检查后再点“保存草稿”。";
      form.parentNode.insertBefore(note, form);
    }
    writeKept(null);  // restored, or the save went through: nothing is kept any longer
  } else if (kept && !onLoginPage && Date.now() - (kept.at || 0) >= KEEP_MS) {
    writeKept(null);
  }

  if (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.checked === "1") { return; }
      var url = form.getAttribute("data-session-url");
      if (!url || !window.fetch) { keep(form); return; }
      event.preventDefault();
      var submitter = event.submitter || null;
      keep(form);  // kept until the page after the save loads, whatever happens to this request
      function post() {
        form.dataset.checked = "1";
        if (form.requestSubmit) { form.requestSubmit(submitter || undefined); } else { form.submit(); }
        form.dataset.checked = "";
      }
      window.fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" }, cache: "no-store" })
        .then(function (reply) {
          if (reply.status === 401) { window.location.assign(form.getAttribute("data-login-url")); return; }
          post();
        }, post);
    });
  }
})();
