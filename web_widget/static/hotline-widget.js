/* hotline-qa chat widget loader: one <script> tag adds a "智能问答" button that opens the chat in a frame.
   The frame isolates the widget from the host page's styles and scripts. */
(function () {
  "use strict";
  if (window.__hotlineWidget) { return; }
  window.__hotlineWidget = true;
  var me = document.currentScript || document.querySelector('script[src*="hotline-widget.js"]');
  var origin = new URL(me.src, document.baseURI).origin;

  var button = document.createElement("button");
  button.type = "button";
  button.id = "hotline-widget-open";
  button.textContent = "智能问答";
  button.setAttribute("aria-expanded", "false");
  button.setAttribute("aria-controls", "hotline-widget-frame");
  button.style.cssText = "position:fixed;right:16px;bottom:16px;z-index:2147483000;padding:12px 18px;" +
    "font-size:18px;border:0;border-radius:24px;background:#b3191f;color:#fff;cursor:pointer;" +
    "box-shadow:0 2px 8px rgba(0,0,0,.3)";

  var frame = document.createElement("iframe");
  frame.id = "hotline-widget-frame";
  frame.title = "12345政务服务智能问答";
  frame.src = origin + "/chat";
  frame.hidden = true;
  frame.style.cssText = "position:fixed;right:16px;bottom:76px;z-index:2147483000;width:min(380px,calc(100vw - 32px));" +
    "height:min(600px,calc(100vh - 96px));border:1px solid #999;border-radius:8px;background:#fff;" +
    "box-shadow:0 4px 16px rgba(0,0,0,.3)";

  // Large-font mode (A+ 大字 in the frame) needs a larger frame: as large as the screen allows.
  function size(big) {
    frame.style.right = big ? "8px" : "16px";
    frame.style.width = big ? "min(560px,calc(100vw - 16px))" : "min(380px,calc(100vw - 32px))";
    frame.style.height = big ? "min(820px,calc(100vh - 88px))" : "min(600px,calc(100vh - 96px))";
  }
  function focusInside() {  // the frame is another document: it puts the focus in its input itself
    if (!frame.hidden && frame.contentWindow) { frame.contentWindow.postMessage({ hotline: "focus" }, origin); }
  }
  window.addEventListener("message", function (event) {
    if (event.origin !== origin || event.source !== frame.contentWindow || !event.data) { return; }
    if (event.data.hotline === "font") { size(!!event.data.big); }
  });
  frame.addEventListener("load", focusInside);

  button.addEventListener("click", function () {
    frame.hidden = !frame.hidden;
    button.setAttribute("aria-expanded", String(!frame.hidden));
    button.textContent = frame.hidden ? "智能问答" : "关闭问答";
    if (!frame.hidden) { frame.focus(); focusInside(); }
  });
  document.body.appendChild(frame);
  document.body.appendChild(button);
})();
