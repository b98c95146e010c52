/* Page explorers of the gdlab book (written into the pages by book/_ext/gdlab_states.py).
 *
 * Each chapter's explorer is a set of native controls (range inputs over the indices of a control's page values,
 * selects for choices) over states drawn at build time by the explorer's own update() code. Changing a control shows
 * the state's image, its alt text and its status line; the states one step away along every control are prefetched
 * as soon as the explorer comes near the viewport (or gets the focus or the pointer) and after every change. No
 * framework; nothing is fetched but the state images, loaded as <img>, so the pages work offline and from file://.
 *
 * window.GDLAB_STATES_PREFETCH = false, set before this script runs, turns prefetching off (the benchmark
 * benchmarks/page_latency.py uses it to time states loaded on demand). After each swap the explorer's root element
 * gets the event "gdlab-states:shown" (detail: {key, prefetched}).
 */
(function () {
  "use strict";

  var PREFETCH = window.GDLAB_STATES_PREFETCH !== false;

  function PageExplorer(root) {
    this.root = root;
    this.data = JSON.parse(root.querySelector("script.gdlab-states-data").textContent);
    this.base = root.getAttribute("data-gdlab-base") || "";
    this.img = root.querySelector("img.gdlab-states-image");
    this.figure = root.querySelector(".gdlab-states-figure");
    this.status = root.querySelector(".gdlab-explorer-status");
    this.controls = this.data.controls;
    this.index = this.controls.map(function (c) { return c.default; });
    this.inputs = this.controls.map(function (c) {
      return root.querySelector('[data-control="' + c.name.replace(/["\\]/g, "\\$&") + '"]');
    });
    this.images = new Map();  // url -> Image, loaded or loading (kept, so that the browser keeps them decoded)
    this.shown = root.getAttribute("data-state") || this.data.default;
    this.wanted = this.shown;
    this.prefetching = false;

    var self = this;
    this.inputs.forEach(function (el, i) {
      if (!el) return;
      var onChange = function () { self.onControl(i); };
      el.addEventListener("input", onChange);
      el.addEventListener("change", onChange);
      self.index[i] = clamp(parseInt(el.value, 10), self.controls[i]);  // a value the browser restored
      self.readout(i);
    });
    var controls = root.querySelector(".gdlab-states-controls");
    if (controls) controls.hidden = false;
    root.classList.add("gdlab-states-ready");
    this.startPrefetching();
    if (this.key() !== this.shown) this.request();
  }

  function clamp(i, control) {
    if (isNaN(i)) return control.default;
    return Math.max(0, Math.min(control.text.length - 1, i));
  }

  PageExplorer.prototype.key = function (index) {
    return (index || this.index).join("-");
  };

  PageExplorer.prototype.url = function (key) {
    var state = this.data.states[key];
    return state ? this.base + state[0] : null;
  };

  PageExplorer.prototype.readout = function (i) {
    var el = this.inputs[i];
    var text = this.controls[i].text[this.index[i]];
    if (!el || el.tagName !== "INPUT") return;
    el.setAttribute("aria-valuetext", text);
    var out = this.root.querySelector('output[for="' + el.id + '"]');
    if (out) out.textContent = text;
  };

  PageExplorer.prototype.onControl = function (i) {
    this.index[i] = clamp(parseInt(this.inputs[i].value, 10), this.controls[i]);
    this.readout(i);
    this.request();
  };

  /* Show the state of the controls' current position: at once if its image is loaded, else once it is decoded. */
  PageExplorer.prototype.request = function () {
    var key = this.key();
    if (key === this.wanted) return;
    this.wanted = key;
    var url = this.url(key);
    if (!url) return;
    var image = this.load(url);  // a prefetched image, or one from the browser's memory cache, is complete at once
    if (image.complete && image.naturalWidth > 0) {
      this.swap(key, url, true);
      return;
    }
    this.busy(true);
    var self = this;
    decoded(image).then(
      function () { if (self.wanted === key) self.swap(key, url, false); },
      function () { if (self.wanted === key) self.failed(key); }
    );
  };

  PageExplorer.prototype.swap = function (key, url, prefetched) {
    var state = this.data.states[key];
    this.img.src = url;
    this.img.alt = state[1];
    if (state[3] && state[4]) {
      this.img.width = state[3];
      this.img.height = state[4];
    }
    this.status.textContent = state[2];
    this.root.setAttribute("data-state", key);
    this.shown = key;
    this.busy(false);
    this.root.dispatchEvent(new CustomEvent("gdlab-states:shown", { detail: { key: key, prefetched: prefetched } }));
    this.prefetch();
  };

  PageExplorer.prototype.failed = function (key) {
    this.busy(false);
    this.wanted = this.shown;
    this.status.textContent = "The figure for these settings could not be loaded; the figure shows the previous "
      + "settings. " + this.data.states[this.shown][2];
  };

  PageExplorer.prototype.busy = function (on) {
    this.figure.setAttribute("aria-busy", on ? "true" : "false");
  };

  PageExplorer.prototype.load = function (url) {
    var image = this.images.get(url);
    if (image) return image;
    image = new Image();
    image.decoding = "async";
    var images = this.images;
    image.addEventListener("error", function () { if (images.get(url) === image) images.delete(url); });
    image.src = url;
    images.set(url, image);
    decoded(image).catch(function () {});  // decode ahead too: a swap to a prefetched state paints at once
    return image;
  };

  /* The states one step away from the current one along each control. */
  PageExplorer.prototype.prefetch = function () {
    if (!PREFETCH || !this.prefetching) return;
    for (var i = 0; i < this.controls.length; i++) {
      for (var d = -1; d <= 1; d += 2) {
        var j = this.index[i] + d;
        if (j < 0 || j >= this.controls[i].text.length) continue;
        var index = this.index.slice();
        index[i] = j;
        var url = this.url(this.key(index));
        if (url) this.load(url);
      }
    }
  };

  /* Prefetch once the explorer is near the viewport, focused or pointed at: a reader who never scrolls to it
     downloads nothing more than the page's own figure. */
  PageExplorer.prototype.startPrefetching = function () {
    if (!PREFETCH) return;
    var self = this;
    var start = function () {
      if (self.prefetching) return;
      self.prefetching = true;
      if (observer) observer.disconnect();
      self.prefetch();
    };
    var observer = null;
    if ("IntersectionObserver" in window) {
      observer = new IntersectionObserver(function (entries) {
        if (entries.some(function (e) { return e.isIntersecting; })) start();
      }, { rootMargin: "600px 0px" });
      observer.observe(this.root);
    } else {
      start();
    }
    this.root.addEventListener("focusin", start);
    this.root.addEventListener("pointerenter", start);
  };

  function decoded(image) {
    if (image.decode) return image.decode();
    return new Promise(function (resolve, reject) {
      if (image.complete && image.naturalWidth > 0) { resolve(); return; }
      image.addEventListener("load", function () { resolve(); });
      image.addEventListener("error", reject);
    });
  }

  function init() {
    var roots = document.querySelectorAll(".gdlab-states");
    for (var i = 0; i < roots.length; i++) {
      if (roots[i].gdlabExplorer) continue;
      try {
        roots[i].gdlabExplorer = new PageExplorer(roots[i]);
      } catch (e) {  // a broken explorer leaves its default figure in place
        if (window.console) console.warn("gdlab page explorer:", e);
      }
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
