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
    auto: $("btn-auto"), skip: $("btn-skip"), toast: $("toast"), music: $("music"), voice: $("voice"),
    sounds: $("sounds"), mute: $("btn-mute"), volume: $("volume")
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

  // -- sound: what the exported game plays (the frame's audio: music state and cue, effects, voice) ------
  var soundKey = "comfyvn:sound";
  var sound = { volume: 0.8, muted: false };
  try {
    var kept = JSON.parse(localStorage.getItem(soundKey) || "null");
    if (kept && typeof kept.volume === "number") sound.volume = Math.max(0, Math.min(1, kept.volume));
    if (kept && typeof kept.muted === "boolean") sound.muted = kept.muted;
  } catch (ignored) { /* a damaged setting: the defaults */ }
  // Browsers let a page play sound only after the reader has interacted with it: nothing starts before
  // the first click or key; the music due by then starts on it.
  var unlocked = false, dueMusic = null;

  function level(media) {
    var base = parseFloat(media.dataset.volume || "1");
    var fade = media.fadeLevel === undefined ? 1 : media.fadeLevel;
    media.volume = Math.max(0, Math.min(1, base * sound.volume * fade));
    media.muted = sound.muted;
  }

  function levelAll() {
    [el.music, el.voice].concat(Array.prototype.slice.call(el.sounds.children)).forEach(level);
    el.mute.setAttribute("aria-pressed", String(sound.muted));
    el.mute.textContent = sound.muted ? "Sound off" : "Sound on";
    el.volume.value = String(Math.round(sound.volume * 100));
  }

  function keepSound() {
    localStorage.setItem(soundKey, JSON.stringify(sound));
    levelAll();
  }

  function fade(media, from, to, seconds, done) {
    clearInterval(media.fader);
    var began = Date.now();
    var tick = function () {
      var k = seconds > 0 ? Math.min(1, (Date.now() - began) / (seconds * 1000)) : 1;
      media.fadeLevel = from + (to - from) * k;
      level(media);
      if (k >= 1) {
        clearInterval(media.fader);
        if (done) done();
      }
    };
    if (seconds > 0) media.fader = setInterval(tick, 50);
    tick();
  }

  function play(media) {
    var started = media.play();
    if (started && started.catch) started.catch(function () { /* refused (no interaction yet): silence */ });
  }

  function playMusic(spec) {
    if (!unlocked) { dueMusic = spec; return; }
    var media = el.music;
    media.dataset.volume = String(spec.volume);
    media.dataset.track = spec.url;
    media.loop = spec.loop;
    media.src = spec.url;
    fade(media, 0, 1, spec.fade);
    play(media);
  }

  function stopMusic(seconds) {
    dueMusic = null;
    var media = el.music;
    media.dataset.track = "";
    var silence = function () {
      media.pause();
      media.removeAttribute("src");
    };
    if (media.paused || !(seconds > 0)) { clearInterval(media.fader); silence(); return; }
    fade(media, media.fadeLevel === undefined ? 1 : media.fadeLevel, 0, seconds, silence);
  }

  function stopVoice() {
    el.voice.pause();
    el.voice.removeAttribute("src");
  }

  /** The frame's sound. ``arrived``: the run stepped here (its statements run: a music cue, effects, the
      voice of its first line); otherwise (a load, a POV switch) the music is only brought in line. */
  function hear(audio, arrived) {
    if (!audio) return;
    Array.prototype.slice.call(el.sounds.children).forEach(function (media) {
      if (media.ended || media.paused) el.sounds.removeChild(media);
    });
    var cue = arrived ? audio.music_cue : null;
    if (cue) {
      if (cue.url) playMusic(cue); else stopMusic(cue.fade);
    } else if (audio.music) {
      if ((unlocked ? el.music.dataset.track : (dueMusic || {}).url) !== audio.music.url) playMusic(audio.music);
    } else if (el.music.dataset.track || dueMusic) {
      stopMusic(0);
    }
    stopVoice();
    if (!arrived || skip || !unlocked) return;  // skipping reads on without the effects and voices
    audio.sounds.forEach(function (spec) {
      var media = document.createElement("audio");
      media.dataset.volume = String(spec.volume);
      media.src = spec.url;
      level(media);
      el.sounds.appendChild(media);
      setTimeout(function () { play(media); }, spec.delay * 1000);
    });
    if (audio.voice) {
      el.voice.dataset.volume = "1";
      el.voice.src = audio.voice;
      level(el.voice);
      play(el.voice);
    }
  }

  function unlock() {
    if (unlocked) return;
    unlocked = true;
    if (dueMusic) playMusic(dueMusic);
  }

  function silenceAll() {
    stopMusic(0);
    stopVoice();
    el.sounds.textContent = "";
  }

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
    el.player.classList.toggle("menu", menu);
    el.ctc.hidden = menu || frame.mode === "end" && lastPage();
    schedule();
  }

  function show(answer, fresh, same, arrived) {
    frame = answer;
    el.player.classList.remove("idle");
    page = 0;
    if (fresh) trail = [], moves = [];
    if (!same) trail.push(answer.state.current_node);
    el.stage.dataset.nodeId = answer.state.current_node;
    el.stage.dataset.scene = answer.scene;
    if (info.povs.length) el.pov.value = answer.state.pov;
    renderStage(answer.stage);
    hear(answer.audio, arrived);
    renderPage();
    if (answer.mode === "end" && !answer.node.pages.length) finish();
  }

  function call(method, path, body, fresh, same) {
    var arrived = path !== "/view";  // a start or a step runs the node's statements; a view only shows
    if (busy) return Promise.resolve(null);
    busy = true;
    el.player.setAttribute("aria-busy", "true");
    return request(method, path, body).then(function (answer) {
      show(answer, fresh, same, arrived);
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
    stopVoice();  // the line's voice ends when the reader moves on
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
    if (!el.ending.hidden) $("btn-again").focus();  // back to the end screen as it was
    else if (el.stage.focus) el.stage.focus();
  }

  function toTitle() {
    stopModes();
    silenceAll();
    el.ending.hidden = true;
    el.title.hidden = false;
    el.player.classList.add("idle");
    el.cont.hidden = !localStorage.getItem(saveKey);
    $("btn-start").focus();
  }

  // The first interaction of any kind unlocks sound (capture: before the handler it starts the run with).
  ["pointerdown", "keydown", "click"].forEach(function (type) { document.addEventListener(type, unlock, true); });
  el.mute.addEventListener("click", function () { sound.muted = !sound.muted; keepSound(); });
  el.volume.addEventListener("input", function () {
    sound.volume = Math.max(0, Math.min(1, (parseInt(el.volume.value, 10) || 0) / 100));
    keepSound();
  });
  levelAll();

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
    if (!el.title.hidden) return;  // the title's own controls take the keys
    if (!el.ending.hidden) {  // the end: its button takes Space and Enter; the log can still be reread
      if (key === "b" || key === "B") { event.preventDefault(); openBacklog(); }
      return;
    }
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
    } else if (key === "m" || key === "M") {
      event.preventDefault(); el.mute.click();
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
    /** What the page's sound is doing: the music track, the voice, the effects, the volume setting. */
    sound: function () {
      var of = function (media) {
        return { src: media.getAttribute("src"), paused: media.paused, loop: media.loop, volume: media.volume, muted: media.muted };
      };
      return {
        music: of(el.music), voice: of(el.voice), sounds: Array.prototype.map.call(el.sounds.children, of),
        volume: sound.volume, muted: sound.muted, unlocked: unlocked
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
