/* ComfyVN web player. The story moves only through the server's deterministic runner: each answer
   carries the runner's state, which goes back with the next request, so the page visits exactly the
   nodes the Python runner visits for the same seed and choices. Text arrives already split into the
   Ren'Py export's pages as styled runs; it is put in the page as text nodes, never as HTML. */
(function () {
  "use strict";
  var api = document.querySelector('meta[name="cvn-api"]').getAttribute("content");
  var saveKey = "comfyvn:save:" + api;
  var STYLE = [[2, "b"], [1, "i"], [4, "s"], [8, "code"]];
  var $ = function (id) { return document.getElementById(id); };
  var el = {
    player: $("player"), stage: $("stage"), background: $("background"), sprites: $("sprites"), side: $("side"),
    speaker: $("speaker"), text: $("text"), ctc: $("ctc"), choices: $("choices"), title: $("title"),
    titleText: $("title-text"), titlePov: $("title-pov"), seed: $("title-seed"), cont: $("btn-continue"),
    pov: $("pov-select"), backlog: $("backlog"), backlogList: $("backlog-list"), ending: $("ending"),
    auto: $("btn-auto"), skip: $("btn-skip"), toast: $("toast")
  };
  var info = null;     // {title, povs, default_pov}
  var frame = null;    // the last answer: {state, node, stage, choices, mode, finished}
  var page = 0;        // the page of frame.node.pages shown
  var seed = 0;
  var busy = false;
  var trail = [];      // node ids visited since the start (or the load)
  var moves = [];      // what each step sent: the choice id, or null where the runner drew
  var log = [];        // backlog: [{who, runs}]
  var auto = false, skip = false, timer = null;
  var rev = 0;         // counts what the page has shown (tests wait for it to move)

  function request(method, path, body) {
    var options = { method: method, headers: { "Accept": "application/json" } };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    return fetch(api + path, options).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          var error = (data && data.error) || {};
          throw new Error(error.message || ("HTTP " + response.status));
        }
        return data;
      });
    });
  }

  function toast(message) {
    el.toast.textContent = message;
    el.toast.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(function () { el.toast.hidden = true; }, 2500);
  }

  function fill(target, runs) {
    target.textContent = "";
    (runs || []).forEach(function (run) {
      var node = document.createTextNode(run[0]);
      STYLE.forEach(function (pair) {
        if (run[1] & pair[0]) {
          var wrap = document.createElement(pair[1]);
          wrap.appendChild(node);
          node = wrap;
        }
      });
      target.appendChild(node);
    });
  }

  function plain(runs) { return (runs || []).map(function (run) { return run[0]; }).join(""); }

  function setOptions(select, selected) {
    select.textContent = "";
    info.povs.forEach(function (pov) {
      var option = document.createElement("option");
      option.value = pov.id;
      option.textContent = pov.name;
      option.selected = pov.id === selected;
      select.appendChild(option);
    });
    select.disabled = info.povs.length < 2;
    select.closest("label").hidden = info.povs.length < 2;  // nothing to choose: no picker
  }

  function renderStage(stage) {
    if (stage.background) {
      if (el.background.getAttribute("src") !== stage.background) el.background.src = stage.background;
      el.background.hidden = false;
    } else {
      el.background.hidden = true;
      el.background.removeAttribute("src");
    }
    el.sprites.textContent = "";
    stage.sprites.forEach(function (sprite) {
      var figure;
      if (sprite.url) {
        figure = document.createElement("img");
        figure.src = sprite.url;
        figure.alt = sprite.id;
      } else {
        figure = document.createElement("div");
        figure.className = "placeholder";
        figure.style.background = sprite.colour || "#888";
      }
      figure.classList.add("sprite");
      figure.dataset.character = sprite.id;
      figure.style.left = (sprite.xalign * 100) + "%";
      figure.style.transform = "translateX(" + (-sprite.xalign * 100) + "%)";
      el.sprites.appendChild(figure);
    });
    if (stage.side) {
      el.side.src = stage.side;
      el.side.hidden = false;
    } else {
      el.side.hidden = true;
      el.side.removeAttribute("src");
    }
  }

  function lastPage() { return page >= Math.max(frame.node.pages.length - 1, 0); }

  function renderPage() {
    rev += 1;
    var node = frame.node;
    var runs = node.pages[page] || [];
    var speaker = node.speaker;
    el.speaker.textContent = speaker ? speaker.name : "";
    el.speaker.style.color = speaker && speaker.color ? speaker.color : "";
    fill(el.text, runs);
    if (runs.length) log.push({ who: speaker ? speaker.name : "", runs: runs });
    if (log.length > 500) log.splice(0, log.length - 500);
    el.choices.textContent = "";
    var menu = lastPage() && frame.mode === "menu";
    if (menu) {
      frame.choices.forEach(function (choice, index) {
        var button = document.createElement("button");
        button.type = "button";
        button.dataset.cvn = "choice";
        button.dataset.choiceId = choice.id;
        fill(button, choice.label);
        button.title = (index < 9 ? (index + 1) + ": " : "") + plain(choice.label);
        button.addEventListener("click", function (event) {
          event.stopPropagation();
          choose(choice.id);
        });
        el.choices.appendChild(button);
      });
      var first = el.choices.querySelector("button");
      if (first) first.focus({ preventScroll: true });
    }
    el.ctc.hidden = menu || frame.mode === "end" && lastPage();
    schedule();
  }

  function show(answer, fresh, same) {
    frame = answer;
    page = 0;
    if (fresh) trail = [], moves = [];
    if (!same) trail.push(answer.state.current_node);
    el.stage.dataset.nodeId = answer.state.current_node;
    el.stage.dataset.scene = answer.scene;
    if (info.povs.length) el.pov.value = answer.state.pov;
    renderStage(answer.stage);
    renderPage();
    if (answer.mode === "end" && !answer.node.pages.length) finish();
  }

  function call(method, path, body, fresh, same) {
    if (busy) return Promise.resolve(null);
    busy = true;
    el.player.setAttribute("aria-busy", "true");
    return request(method, path, body).then(function (answer) {
      show(answer, fresh, same);
      return answer;
    }).catch(function (error) {
      stopModes();
      toast(error.message);
      throw error;
    }).finally(function () {
      busy = false;
      el.player.setAttribute("aria-busy", "false");
      // A node with nothing to read and one way on is passed through, as the export's jump is.
      if (frame && frame.mode === "draw" && !frame.node.pages.length && el.title.hidden) advance();
    });
  }

  function choose(choiceId) {
    if (!frame || busy) return;
    call("POST", "/step", { state: frame.state, choice_id: choiceId }).then(function (answer) {
      if (answer) moves.push(choiceId);
    });
  }

  function finish() {
    stopModes();
    el.ending.hidden = false;
    $("btn-again").focus();
  }

  function advance() {
    if (!frame || busy || !el.title.hidden || !el.backlog.hidden || !el.ending.hidden) return;
    if (!lastPage()) {
      page += 1;
      renderPage();
      return;
    }
    if (frame.mode === "draw") {
      call("POST", "/step", { state: frame.state }).then(function (answer) {
        if (answer) moves.push(null);
      });
    } else if (frame.mode === "end") {
      finish();
    } else {
      stopModes();  // a menu waits for the reader, whatever mode was on
      var first = el.choices.querySelector("button");
      if (first) first.focus();
    }
  }

  function stopModes() {
    auto = skip = false;
    el.auto.setAttribute("aria-pressed", "false");
    el.skip.setAttribute("aria-pressed", "false");
    clearTimeout(timer);
  }

  function schedule() {
    clearTimeout(timer);
    if (!frame || !(auto || skip)) return;
    if (lastPage() && frame.mode === "menu") { stopModes(); return; }
    var delay = skip ? 120 : 1200 + 40 * el.text.textContent.length;
    timer = setTimeout(advance, delay);
  }

  function start(pov) {
    el.title.hidden = true;
    el.ending.hidden = true;
    log = [];
    seed = parseInt(el.seed.value, 10) || 0;
    var body = { seed: seed };
    if (pov || el.titlePov.value) body.pov = pov || el.titlePov.value;  // none: the project's default
    return call("POST", "/start", body, true);
  }

  function save() {
    if (!frame) return;
    var record = { state: frame.state, page: page, seed: seed, trail: trail, saved_at: new Date().toISOString() };
    localStorage.setItem(saveKey, JSON.stringify(record));
    el.cont.hidden = false;
    toast("Saved");
  }

  function load() {
    var raw = localStorage.getItem(saveKey);
    if (!raw) { toast("No save yet"); return Promise.resolve(null); }
    var record = JSON.parse(raw);
    el.title.hidden = true;
    el.ending.hidden = true;
    seed = record.seed || 0;
    log = [];
    return call("POST", "/view", { state: record.state }, true).then(function () {
      trail = (record.trail || []).slice(0, -1).concat(trail);
      page = Math.min(record.page || 0, Math.max(frame.node.pages.length - 1, 0));
      renderPage();
      toast("Loaded");
    });
  }

  function openBacklog() {
    el.backlogList.textContent = "";
    log.forEach(function (entry) {
      var item = document.createElement("li");
      if (entry.who) {
        var who = document.createElement("span");
        who.className = "who";
        who.textContent = entry.who;
        item.appendChild(who);
      }
      var line = document.createElement("span");
      fill(line, entry.runs);
      item.appendChild(line);
      el.backlogList.appendChild(item);
    });
    stopModes();
    el.backlog.hidden = false;
    $("btn-backlog-close").focus();
  }

  function closeBacklog() {
    el.backlog.hidden = true;
    el.stage.focus && el.stage.focus();
  }

  function toTitle() {
    stopModes();
    el.ending.hidden = true;
    el.title.hidden = false;
    el.cont.hidden = !localStorage.getItem(saveKey);
    $("btn-start").focus();
  }

  el.stage.addEventListener("click", function (event) {
    if (event.target.closest("button")) return;
    advance();
  });
  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) return;
    var key = event.key;
    if (!el.backlog.hidden) {
      if (key === "Escape" || key === "b" || key === "B") { event.preventDefault(); closeBacklog(); }
      return;
    }
    if (!el.title.hidden || !el.ending.hidden) return;  // the overlay's own controls take the keys
    var tag = event.target && event.target.tagName;
    if (tag === "SELECT" || tag === "INPUT") return;
    if ((key === " " || key === "Enter") && tag === "BUTTON") return;  // the focused button acts
    if (key === "ArrowDown" || key === "ArrowUp") {
      var options = Array.prototype.slice.call(el.choices.querySelectorAll('[data-cvn="choice"]'));
      if (options.length) {
        event.preventDefault();
        var at = options.indexOf(document.activeElement);
        var next = key === "ArrowDown" ? at + 1 : (at < 0 ? options.length - 1 : at - 1);
        options[(next + options.length) % options.length].focus();
      }
      return;
    }
    if (key === " " || key === "Enter" || key === "ArrowRight" || key === "PageDown") {
      event.preventDefault();
      advance();
    } else if (/^[1-9]$/.test(key)) {
      var buttons = el.choices.querySelectorAll('[data-cvn="choice"]');
      var button = buttons[parseInt(key, 10) - 1];
      if (button) { event.preventDefault(); button.click(); }
    } else if (key === "b" || key === "B") {
      event.preventDefault(); openBacklog();
    } else if (key === "a" || key === "A") {
      event.preventDefault(); el.auto.click();
    } else if (key === "s" || key === "S") {
      event.preventDefault(); el.skip.click();
    } else if (key === "F5") {
      event.preventDefault(); save();
    } else if (key === "F9") {
      event.preventDefault(); load();
    } else if (key === "Escape") {
      stopModes();
    }
  });
  $("title-form").addEventListener("submit", function (event) { event.preventDefault(); start(); });
  el.cont.addEventListener("click", load);
  $("btn-back").addEventListener("click", openBacklog);
  $("btn-backlog-close").addEventListener("click", closeBacklog);
  $("btn-save").addEventListener("click", save);
  $("btn-load").addEventListener("click", load);
  $("btn-title").addEventListener("click", toTitle);
  $("btn-again").addEventListener("click", toTitle);
  el.auto.addEventListener("click", function () {
    auto = !auto; skip = false;
    el.auto.setAttribute("aria-pressed", String(auto));
    el.skip.setAttribute("aria-pressed", "false");
    schedule();
  });
  el.skip.addEventListener("click", function () {
    skip = !skip; auto = false;
    el.skip.setAttribute("aria-pressed", String(skip));
    el.auto.setAttribute("aria-pressed", "false");
    schedule();
  });
  el.pov.addEventListener("change", function () {
    if (!frame) return;
    call("POST", "/view", { state: frame.state, pov: el.pov.value }, false, true);
  });

  window.comfyvn = {
    /** The run as the page holds it: scene, node, variables, seed, POV (and page, trail, finished). */
    state: function () {
      if (!frame) return null;
      var s = frame.state;
      return {
        scene: s.scene_id, node: s.current_node, variables: JSON.parse(JSON.stringify(s.variables)),
        seed: s.rng.seed, pov: s.pov, page: page, pages: frame.node.pages.length, mode: frame.mode,
        finished: frame.finished, trail: trail.slice(), moves: moves.slice(), busy: busy, rev: rev
      };
    },
    start: start, save: save, load: load, advance: advance, choose: choose
  };

  request("GET", "/info").then(function (answer) {
    info = answer;
    document.title = answer.title + " - ComfyVN";
    el.titleText.textContent = answer.title;
    setOptions(el.titlePov, answer.default_pov);
    setOptions(el.pov, answer.default_pov);
    el.cont.hidden = !localStorage.getItem(saveKey);
    el.player.setAttribute("aria-busy", "false");
    el.player.dataset.ready = "true";
    $("btn-start").focus();
  }).catch(function (error) {
    el.titleText.textContent = error.message;
  });
})();
