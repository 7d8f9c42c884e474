/* execlib live-reload client: LiveReload protocol 7 over a WebSocket, no dependencies.
 *
 * - stylesheet change: a cache-busted copy of the matching <link> (or @import) is loaded
 *   and the old one removed only once the new one has loaded (no flash of unstyled content);
 * - image change: matching <img> src/srcset and CSS background images are swapped in place;
 * - anything else: the page reloads and its scroll position is restored;
 * - alert: a small dismissable message box; overlay: a build-error panel (execlib extension);
 * - connection lost: reconnect with a backoff capped at 1 s, forever; if the server restarted
 *   (a new boot id) or changes were made meanwhile (a new generation), reload once.
 * The client reports the page URL and the same-origin resources the page loaded, so the server
 * reloads only the pages a change touches.
 */
(function () {
  "use strict";
  if (window.__execlibLiveReload) return;
  var PROTOCOL = "http://livereload.com/protocols/official-7";
  var SCROLL_KEY = "execlib.scroll:" + location.pathname + location.search;
  var IMAGE_EXT = /\.(png|jpe?g|gif|svg|webp|avif|ico|bmp)$/i;
  var state = { ws: null, retry: 0, boot: null, generation: null, sent: {}, reportTimer: null };
  var api = (window.__execlibLiveReload = { state: state, reloads: 0, cssSwaps: 0, imgSwaps: 0 });

  function wsUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/livereload";
  }

  function pathOf(url) {
    try {
      var u = new URL(url, location.href);
      return u.origin === location.origin ? decodeURI(u.pathname) : null;
    } catch (e) {
      return null;
    }
  }

  function samePath(a, b) {
    return a !== null && b !== null && a === b;
  }

  function bust(url) {
    var u = new URL(url, location.href);
    u.searchParams.set("livereload", String(Date.now()) + Math.random().toString(36).slice(2, 6));
    return u.href;
  }

  // ---------------------------------------------------------------- resources

  function resources() {
    var seen = {};
    var list = [];
    var entries = (performance.getEntriesByType && performance.getEntriesByType("resource")) || [];
    function add(url) {
      var p = pathOf(url);
      if (p && !seen[p] && p !== "/livereload.js" && p !== "/livereload") {
        seen[p] = true;
        list.push(p);
      }
    }
    entries.forEach(function (e) { add(e.name); });
    // Elements whose loads may predate the observer or come from the memory cache.
    document.querySelectorAll("link[href]").forEach(function (l) { add(l.href); });
    document.querySelectorAll("script[src], img[src]").forEach(function (s) { add(s.src); });
    return list;
  }

  function sendInfo() {
    state.reportTimer = null;
    if (!state.ws || state.ws.readyState !== 1) return;
    state.ws.send(JSON.stringify({
      command: "info",
      url: location.href,
      plugins: {},
      resources: resources(),
    }));
  }

  function scheduleInfo() {
    if (state.reportTimer === null) state.reportTimer = setTimeout(sendInfo, 50);
  }

  if (window.PerformanceObserver) {
    try {
      new PerformanceObserver(scheduleInfo).observe({ type: "resource", buffered: false });
    } catch (e) { /* old browsers: the handshake report still goes out */ }
  }

  // ---------------------------------------------------------------- reloading

  function reloadPage() {
    try {
      sessionStorage.setItem(SCROLL_KEY, JSON.stringify([window.scrollX, window.scrollY]));
    } catch (e) { /* storage may be disabled */ }
    api.reloads += 1;
    location.reload();
  }

  function restoreScroll() {
    var saved;
    try {
      saved = sessionStorage.getItem(SCROLL_KEY);
      sessionStorage.removeItem(SCROLL_KEY);
    } catch (e) {
      return;
    }
    if (!saved) return;
    var xy = JSON.parse(saved);
    var apply = function () { window.scrollTo(xy[0], xy[1]); };
    if (document.readyState === "complete") apply();
    else window.addEventListener("load", apply, { once: true });
  }

  function swapLink(link) {
    var clone = link.cloneNode(false);
    clone.href = bust(link.href);
    var done = false;
    var finish = function () {
      if (done) return;
      done = true;
      if (link.parentNode) link.parentNode.removeChild(link);
    };
    clone.addEventListener("load", finish);
    clone.addEventListener("error", finish);
    link.parentNode.insertBefore(clone, link.nextSibling);
    api.cssSwaps += 1;
  }

  function reloadStylesheet(path) {
    var matched = false;
    document.querySelectorAll('link[rel~="stylesheet"][href]').forEach(function (link) {
      if (samePath(pathOf(link.href), path)) {
        swapLink(link);
        matched = true;
      }
    });
    // Sheets pulled in by @import: replace the rule with a cache-busted one, in place.
    var sheets = Array.prototype.slice.call(document.styleSheets);
    sheets.forEach(function walk(sheet) {
      var rules;
      try {
        rules = sheet.cssRules;
      } catch (e) {
        return; // cross-origin sheet
      }
      for (var i = 0; i < rules.length; i++) {
        var rule = rules[i];
        if (rule.type !== 3 /* CSSRule.IMPORT_RULE */) continue;
        if (samePath(pathOf(rule.href), path)) {
          var media = rule.media && rule.media.mediaText ? " " + rule.media.mediaText : "";
          sheet.insertRule('@import url("' + bust(new URL(rule.href, sheet.href || location.href).href) + '")' + media + ";", i);
          sheet.deleteRule(i + 1);
          matched = true;
          api.cssSwaps += 1;
        } else if (rule.styleSheet) {
          walk(rule.styleSheet);
        }
      }
    });
    return matched;
  }

  function reloadImage(path) {
    var matched = false;
    document.querySelectorAll("img").forEach(function (img) {
      if (samePath(pathOf(img.src), path)) {
        img.src = bust(img.src);
        matched = true;
      }
      if (img.srcset) {
        var changed = false;
        var srcset = img.srcset.split(",").map(function (part) {
          var bits = part.trim().split(/\s+/);
          if (samePath(pathOf(bits[0]), path)) {
            bits[0] = bust(bits[0]);
            changed = true;
          }
          return bits.join(" ");
        });
        if (changed) {
          img.srcset = srcset.join(", ");
          matched = true;
        }
      }
    });
    var urlPattern = /url\((['"]?)([^'")]+)\1\)/g;
    function rewrite(style, base) {
      var value = style.backgroundImage;
      if (!value || value.indexOf("url(") < 0) return false;
      var hit = false;
      var next = value.replace(urlPattern, function (all, quote, url) {
        if (samePath(pathOf(new URL(url, base).href), path)) {
          hit = true;
          return 'url("' + bust(new URL(url, base).href) + '")';
        }
        return all;
      });
      if (hit) style.backgroundImage = next;
      return hit;
    }
    document.querySelectorAll("[style]").forEach(function (el) {
      if (rewrite(el.style, location.href)) matched = true;
    });
    Array.prototype.forEach.call(document.styleSheets, function walk(sheet) {
      var rules;
      try {
        rules = sheet.cssRules;
      } catch (e) {
        return;
      }
      for (var i = 0; i < rules.length; i++) {
        if (rules[i].style && rewrite(rules[i].style, sheet.href || location.href)) matched = true;
        if (rules[i].styleSheet) walk(rules[i].styleSheet);
      }
    });
    if (matched) api.imgSwaps += 1;
    return matched;
  }

  function reload(message) {
    var path = message.path || "";
    if (path.charAt(0) !== "/") path = pathOf(path) || path;
    if (message.liveCSS !== false && /\.css$/i.test(path) && reloadStylesheet(path)) return;
    if (message.liveImg !== false && IMAGE_EXT.test(path) && reloadImage(path)) return;
    reloadPage();
  }

  // ---------------------------------------------------------------- messages on the page

  function panel(id, title, text, tone) {
    var old = document.getElementById(id);
    if (old) old.remove();
    var host = document.createElement("execlib-message");
    host.id = id;
    host.style.cssText = "all: initial; position: fixed; z-index: 2147483647; left: 0; right: 0; top: 0;";
    var root = host.attachShadow({ mode: "open" });
    var style = document.createElement("style");
    style.textContent =
      ":host{all:initial}" +
      ".box{margin:12px auto;max-width:900px;max-height:80vh;overflow:auto;font:14px/1.45 ui-monospace,Menlo,Consolas,monospace;" +
      "color:#f8f8f2;background:" + (tone === "error" ? "#3b0d0d" : "#1e2a44") + ";border-left:6px solid " +
      (tone === "error" ? "#ff5555" : "#6aa0ff") + ";border-radius:6px;box-shadow:0 8px 30px rgba(0,0,0,.4);padding:14px 18px}" +
      ".title{font:bold 15px system-ui,sans-serif;margin:0 0 8px;color:#fff}" +
      "pre{white-space:pre-wrap;word-break:break-word;margin:0}" +
      "button{all:initial;float:right;cursor:pointer;color:#fff;font:20px system-ui;line-height:1;padding:0 4px}";
    var box = document.createElement("div");
    box.className = "box";
    box.setAttribute("role", "alert");
    var close = document.createElement("button");
    close.textContent = "\u00d7";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", function () { host.remove(); });
    var heading = document.createElement("div");
    heading.className = "title";
    heading.textContent = title;
    var body = document.createElement("pre");
    body.textContent = text;
    box.appendChild(close);
    box.appendChild(heading);
    box.appendChild(body);
    root.appendChild(style);
    root.appendChild(box);
    (document.body || document.documentElement).appendChild(host);
    return host;
  }

  function handle(message) {
    switch (message.command) {
      case "hello":
        var restarted = state.boot !== null && (message.execlibBoot !== state.boot ||
          (message.execlibGeneration !== undefined && message.execlibGeneration !== state.generation));
        if (restarted) {
          reloadPage();
          return;
        }
        if (message.execlibBoot !== undefined) state.boot = message.execlibBoot;
        if (message.execlibGeneration !== undefined) state.generation = message.execlibGeneration;
        sendInfo();
        break;
      case "reload":
        if (message.execlibGeneration !== undefined) state.generation = message.execlibGeneration;
        reload(message);
        break;
      case "alert":
        panel("execlib-alert", "Message from the dev server", String(message.message || ""), "info");
        break;
      case "execlib-error":
        panel("execlib-error-overlay", String(message.title || "Build failed"), String(message.text || ""), "error");
        break;
      case "execlib-clear-error":
        var overlay = document.getElementById("execlib-error-overlay");
        if (overlay) overlay.remove();
        break;
      case "execlib-generation":
        state.generation = message.execlibGeneration;
        break;
      default:
        break; // unknown commands are ignored, as the protocol asks
    }
  }

  function connect() {
    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      return retryLater();
    }
    state.ws = ws;
    ws.onopen = function () {
      state.retry = 0;
      ws.send(JSON.stringify({ command: "hello", protocols: [PROTOCOL] }));
    };
    ws.onmessage = function (event) {
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (e) {
        return;
      }
      handle(message);
    };
    ws.onclose = function () {
      if (state.ws === ws) state.ws = null;
      retryLater();
    };
  }

  function retryLater() {
    var delay = Math.min(1000, 100 * Math.pow(2, state.retry));
    state.retry += 1;
    setTimeout(connect, delay);
  }

  restoreScroll();
  connect();
})();
