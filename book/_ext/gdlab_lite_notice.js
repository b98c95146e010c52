/* gdlab: the notice shown while Python starts in the live site. book/_ext/gdlab_lite.py puts this script, inline,
 * at the end of lite/lab/index.html and lite/notebooks/index.html, after `window.GDLAB_LITE = {...}` (the versions
 * that run and the megabytes a first visit downloads, computed when the site is built). Nothing is fetched.
 *
 * While a notebook's kernel starts, a box says that Python is starting in the browser, how much the first visit
 * downloads and which versions run; it goes away when the kernel is idle. The kernel's state is read from the notebook
 * toolbar's execution indicator, `.jp-Notebook-ExecutionIndicator[data-status]` (JupyterLab and Notebook 7 alike),
 * which also says "idle" for a moment before any kernel exists: only an "idle" that follows a state of a kernel
 * (initializing, unknown, starting, busy) counts, and a MutationObserver sees every change of the attribute.
 * A browser without WebAssembly is told instead that it cannot run Python here and to download the notebook. */
(function () {
  "use strict";
  var cfg = window.GDLAB_LITE || {};
  var INDICATOR = ".jp-Notebook-ExecutionIndicator[data-status]";
  var SLOW_SECONDS = 120;

  function paragraph(text) {
    var p = document.createElement("p");
    p.textContent = text;
    return p;
  }

  function hasWebAssembly() {
    try {
      var empty = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);  // the smallest module
      return typeof WebAssembly === "object" && new WebAssembly.Module(empty) instanceof WebAssembly.Module;
    } catch (e) {
      return false;
    }
  }

  function kernelStatus() {
    var indicator = document.querySelector(INDICATOR);
    return indicator ? indicator.getAttribute("data-status") : null;
  }

  function opensNotebook() {
    return /\.ipynb$/.test(new URLSearchParams(window.location.search).get("path") || "");
  }

  var box = document.createElement("div");
  box.id = "gdlab-lite-notice";

  if (!hasWebAssembly()) {
    box.className = "gdlab-lite-error";
    box.setAttribute("role", "alert");
    box.appendChild(paragraph(
      "This browser cannot run Python here: it does not support WebAssembly, which the live notebooks need. " +
      "Download the notebook instead (the download button of the chapter's page in the book, or File > Download " +
      "here) and open it in Jupyter, or open this page in a recent Firefox, Chrome, Edge or Safari."));
    document.body.appendChild(box);
    return;
  }

  var started = Date.now();
  var elapsed = document.createElement("span");
  elapsed.className = "gdlab-lite-elapsed";
  var first = paragraph(
    "Python is starting in your browser (Pyodide " + cfg.pyodide + ": Python " + cfg.python + ", numpy " +
    cfg.numpy + ", scipy " + cfg.scipy + ", matplotlib " + cfg.matplotlib + "). The first visit downloads about " +
    cfg.megabytes + " MB; your browser keeps them, so later visits start faster. ");
  first.appendChild(elapsed);
  var hint = paragraph("");
  var close = document.createElement("button");
  close.type = "button";
  close.setAttribute("aria-label", "Close this notice");
  close.textContent = "\u00d7";
  box.setAttribute("role", "status");
  box.setAttribute("aria-live", "polite");
  box.appendChild(first);
  box.appendChild(hint);
  box.appendChild(close);

  var timer = null;
  var observer = null;
  var kernelSeen = false;  // a status other than "idle" was seen: a kernel exists (its "idle" means ready)
  function finish() {
    window.clearInterval(timer);
    if (observer) observer.disconnect();
    if (box.parentNode) box.parentNode.removeChild(box);
  }
  close.addEventListener("click", finish);

  function update() {
    var status = kernelStatus();
    if (status && status !== "idle") kernelSeen = true;
    if (status === "idle" && kernelSeen) {
      finish();
      return;
    }
    if (!box.parentNode && (opensNotebook() || kernelSeen)) document.body.appendChild(box);
    var seconds = Math.round((Date.now() - started) / 1000);
    elapsed.textContent = "(" + seconds + " s)";
    if (status === "dead") {
      box.className = "gdlab-lite-error";
      hint.textContent = "Python stopped while starting. Reload the page to try again, or download the notebook " +
        "and open it in Jupyter.";
    } else if (seconds >= SLOW_SECONDS) {
      hint.textContent = "This is taking longer than usual: a slow connection or a busy computer. You can keep " +
        "waiting, or reload the page.";
    }
  }

  update();
  timer = window.setInterval(update, 1000);
  if (window.MutationObserver) {
    observer = new MutationObserver(update);
    observer.observe(document.body, {attributes: true, attributeFilter: ["data-status"], subtree: true});
  }
})();
