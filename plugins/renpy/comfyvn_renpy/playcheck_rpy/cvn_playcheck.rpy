## ComfyVN play-check: plays this game as a player would and records what each interaction shows.
## comfyvn_renpy.playcheck copies the game, drops this file and cvn_playcheck.json into the COPY's game/
## folder and runs the real engine offscreen; it is never part of an export.
##
## How it drives the game: a periodic callback (Ren'Py calls it 20 times a second inside every
## interaction) waits until the interaction has been drawn, records what is shown (screens, images and
## their bounds, the say window and the rendered dialogue text, the fonts), takes the screenshots asked
## for, then ends the interaction the way a player would: Start on the title screen, a click on a line,
## a choice on a menu. One JSON object per line goes to the records file named in cvn_playcheck.json.

init 1999 python in cvn_playcheck:

    import collections.abc
    import io
    import json
    import os
    import re
    import time

    CONFIG = json.load(io.open(os.path.join(renpy.config.gamedir, "cvn_playcheck.json"), "r", encoding="utf-8"))
    _out = io.open(CONFIG["records"], "w", encoding="utf-8", buffering=1)  # line-buffered: survives a kill

    DIALOGUE_STYLES = ("say_dialogue", "say_thought", "nvl_dialogue")
    FONT_TAG = re.compile(r"\{font=([^}]*)\}")
    SKIP_LAYERS = ("screens", "overlay", "transient")

    CONTROL = (
        renpy.display.core.EndInteraction, renpy.game.JumpException, renpy.game.JumpOutException,
        renpy.game.CallException, renpy.game.QuitException, renpy.game.FullRestartException,
        renpy.game.UtterRestartException, renpy.game.RestartContext, renpy.game.RestartTopContext,
    )

    state = {
        "interaction": 0,       # start_interact counter
        "interaction_at": time.time(),
        "handled": -1,          # the last interaction acted upon
        "ticks": 0,             # periodic ticks since the interaction (re)started
        "pending_menu": None,   # (location, [(label, value, sensitive)]) of the menu being shown
        "menu_index": 0,        # menus passed in this playthrough (for a given path)
        "story_started": False,
        "playthrough": 0,
        "title_seen": 0,
        "starts": 0,            # times the start label was reached
        "label": None,
        "shots": {},
        "last_frame": None,     # a non-dialogue frame (ending card) when the story's last interaction was one
        "menus": {},            # menu location -> labels of its enabled choices (explore mode)
        "taken": set(),         # (menu location, choice label) taken so far
        "fonts": {},            # font spec -> resolved file (None: not found)
        "done": False,
        "started_at": time.time(),
    }

    def emit(record):
        record["t"] = round(time.time() - state["started_at"], 3)
        _out.write(json.dumps(record, ensure_ascii=False, default=repr) + u"\n")

    def finish(reason, **extra):
        if state["done"]:
            return
        state["done"] = True
        if state["last_frame"] is not None:
            save_frame("ending", state["last_frame"])
        record = {"event": "finish", "reason": reason, "interactions": state["interaction"],
                  "grab_seconds": round(state.get("grab_seconds", 0.0), 3)}
        record.update(extra)
        emit(record)
        _out.close()
        renpy.quit()

    # -- screenshots ------------------------------------------------------------------------------

    def _shot_path(name):
        folder = CONFIG.get("screenshots")
        if not folder or name in state["shots"]:
            return None
        return os.path.join(folder, name + ".png")

    def shot(name):
        path = _shot_path(name)
        if path is None:
            return
        state["shots"][name] = bool(renpy.screenshot(path))
        emit({"event": "screenshot", "name": name, "path": path, "ok": state["shots"][name]})

    def grab_frame():
        """The frame on screen now, kept in memory: the story's last frame is only known to be last later."""
        state["last_frame"] = None
        if CONFIG.get("screenshots"):
            started = time.time()
            state["last_frame"] = renpy.display.draw.screenshot(renpy.game.interface.surftree)
            state["grab_seconds"] = state.get("grab_seconds", 0.0) + time.time() - started

    def save_frame(name, surface):
        path = _shot_path(name)
        if path is None:
            return
        try:
            renpy.display.scale.image_save_unscaled(surface, path)
            state["shots"][name] = True
        except Exception:
            state["shots"][name] = False
        emit({"event": "screenshot", "name": name, "path": path, "ok": state["shots"][name]})

    # -- what is on screen ------------------------------------------------------------------------

    def shown_screens():
        names = []
        for name in sorted(renpy.display.screen.screens_by_name):
            try:
                if renpy.get_screen(name) is not None:
                    names.append(name)
            except Exception:
                pass
        return names

    def shown_images():
        images = []
        for layer in renpy.config.layers:
            if layer in SKIP_LAYERS:
                continue
            try:
                tags = renpy.get_showing_tags(layer, sort=True)
            except Exception:
                continue
            for tag in tags:
                bounds = renpy.get_image_bounds(tag, layer=layer)
                images.append({
                    "layer": layer,
                    "tag": tag,
                    "attributes": list(renpy.get_attributes(tag, layer=layer) or ()),
                    "bounds": [float(v) for v in bounds] if bounds is not None else None,
                })
        return images

    def _renders(render, x, y, ancestors, seen):
        """Yields (displayable, (x, y, w, h), ancestors) for every Render drawn this frame."""
        if id(render) in seen:
            return
        seen.add(id(render))
        here = ancestors
        for d in (render.render_of or ()):
            rect = (x, y, render.width, render.height)
            yield d, rect, here
            here = here + [(d, rect)]
        for child in (render.children or ()):
            if isinstance(child[0], renpy.display.render.Render):
                for found in _renders(child[0], x + child[1], y + child[2], here, seen):
                    yield found

    def _drawn():
        tree = renpy.game.interface.surftree
        if tree is None:
            return []
        return list(_renders(tree, 0, 0, [], set()))

    def _style_name(d):
        """The style's name, or for an anonymous (per-widget) style the name of the style it inherits."""
        style = getattr(d, "style", None)
        for attr in ("name", "parent"):
            name = getattr(style, attr, None)
            if isinstance(name, tuple) and name:
                return str(name[0])
            if isinstance(name, str):
                return name
        return None

    def _style_value(d, name):
        try:
            return getattr(d.style, name)
        except Exception:
            return None

    def _number(v):
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def font_spec(font):
        """A font as the records name it: its spec (file name, `index@file`), or a FontGroup's ranges."""
        if isinstance(font, str):
            resolve_font(font)
            return font
        group = getattr(font, "map", None)
        if isinstance(group, collections.abc.Mapping):  # `dict` here is the store's RevertableDict
            ranges = []
            for code in sorted(k for k in group if isinstance(k, int)):
                target = group[code]
                name = target if isinstance(target, str) else None
                if name is not None:
                    resolve_font(name)
                if ranges and ranges[-1][1] == code - 1 and ranges[-1][2] == name:
                    ranges[-1][1] = code
                else:
                    ranges.append([code, code, name])
            default = group.get(None)
            if isinstance(default, str):
                resolve_font(default)
            return {"group": ranges, "default": default if isinstance(default, str) else None}
        return repr(font)

    def resolve_font(spec):
        if spec in state["fonts"]:
            return
        name = spec.split("@", 1)[1] if "@" in spec else spec
        try:
            path = renpy.loader.transfn(name)
        except Exception:
            path = None
        state["fonts"][spec] = path
        emit({"event": "font", "spec": spec, "path": path})

    def dialogue_widget(drawn):
        for screen in ("say", "nvl"):
            try:
                d = renpy.get_displayable(screen, "what")
            except Exception:
                d = None
            if d is not None:
                return screen, d
        # Without a say screen Ren'Py builds the window itself: the Text styled as dialogue is the line.
        for d, _rect, _ancestors in reversed(drawn):
            if isinstance(d, renpy.text.text.Text) and _style_name(d) in DIALOGUE_STYLES:
                return None, d
        return None, None

    def textbox(drawn):
        """The dialogue Text on screen: its text, font, rendered rect, and the window around it."""
        screen, what = dialogue_widget(drawn)
        if what is None:
            return None
        who = None
        if screen is not None:
            try:
                who = renpy.get_displayable(screen, "who")
            except Exception:
                who = None
        places = {}
        for d, rect, ancestors in drawn:
            if (d is what or d is who) and id(d) not in places:
                windows = [a for a in ancestors if isinstance(a[0], renpy.display.layout.Window)]
                places[id(d)] = (rect, windows[-1] if windows else None)
        rect, window = places.get(id(what), (None, None))
        for tag_font in FONT_TAG.findall(what.get_all_text().replace("{{", "")):
            resolve_font(tag_font)
        info = {
            "screen": screen,
            "text": what.get_all_text(),
            "font": font_spec(_style_value(what, "font")),
            "size": _number(_style_value(what, "size")),
            "style": _style_name(what),
            "rect": list(rect) if rect is not None else None,
            "window": None,
            "who": None,
        }
        if window is not None:
            w, wrect = window
            info["window"] = {
                "rect": list(wrect),
                "style": _style_name(w),
                "ysize": _number(_style_value(w, "ysize")),
                "ymaximum": _number(_style_value(w, "ymaximum")),
            }
        if who is not None:
            who_rect = places.get(id(who), (None, None))[0]
            info["who"] = {
                "text": who.get_all_text(),
                "font": font_spec(_style_value(who, "font")),
                "rect": list(who_rect) if who_rect is not None else None,
            }
        return info

    def choice_font():
        name = "choice_button_text" if renpy.get_screen("choice") is not None else "menu_choice"
        try:
            return font_spec(getattr(renpy.store.style, name).font)
        except Exception:
            return None

    def configured_fonts():
        gui = getattr(renpy.store, "gui", None)
        names = {}
        for attr in ("text_font", "name_text_font", "interface_text_font", "button_text_font",
                     "choice_button_text_font"):
            value = getattr(gui, attr, None) if gui is not None else None
            if isinstance(value, str):
                names["gui." + attr] = font_spec(value)
        for style_name in ("default", "say_dialogue", "say_label", "choice_button_text", "button_text"):
            try:
                value = getattr(renpy.store.style, style_name).font
            except Exception:
                continue
            names["style." + style_name] = font_spec(value)
        return names

    def record(kind, **extra):
        drawn = _drawn()
        filename, line = renpy.get_filename_line()
        rec = {
            "event": "interaction",
            "kind": kind,
            "n": state["interaction"],
            "playthrough": state["playthrough"],
            "label": state["label"],
            "where": "%s:%s" % (filename, line),
            "waited": round(time.time() - state["interaction_at"], 3),
            "screens": shown_screens(),
            "images": shown_images(),
            "textbox": textbox(drawn) if kind in ("say", "menu") else None,
        }
        rec.update(extra)
        emit(rec)
        return rec

    # -- choosing ---------------------------------------------------------------------------------

    def choose(location, items):
        """Index of the item to take: the given path, else (explore) the first untaken one, else the first."""
        enabled = [i for i, item in enumerate(items) if item[2]]
        if not enabled:
            return None
        path = CONFIG.get("path") or []
        if state["menu_index"] < len(path):
            wanted = path[state["menu_index"]]
            for i in enabled:
                if i == wanted or items[i][0] == wanted:
                    return i
        if CONFIG.get("mode") == "explore":
            for i in enabled:
                if (location, items[i][0]) not in state["taken"]:
                    return i
        return enabled[0]

    def untaken():
        return sum(1 for location, labels in state["menus"].items() for label in labels
                   if (location, label) not in state["taken"])

    def wrap_menu(original):
        def menu(items, *args, **kwargs):
            location = repr(renpy.game.context().current)
            entries = []
            for label, value in items:
                if value is None:
                    continue
                sensitive = True
                if isinstance(value, renpy.ui.ChoiceReturn):
                    sensitive = bool(getattr(value, "sensitive", True))
                    value = value.value
                entries.append((label, value, sensitive))
            state["menus"].setdefault(location, set()).update(label for label, _v, s in entries if s)
            state["pending_menu"] = (location, entries)
            try:
                return original(items, *args, **kwargs)
            finally:
                state["pending_menu"] = None
        return menu

    # -- the driver -------------------------------------------------------------------------------

    def player_preferences():
        """Preferences a player can choose too: no transitions, instant text, no auto-forward. Every frame we
        look at is then the final one. Set per interaction, since `default preferences.*` is applied late."""
        prefs = renpy.game.preferences
        prefs.transitions = 0
        prefs.text_cps = 0
        prefs.afm_enable = False
        renpy.config.auto_choice_delay = None

    def on_start_interact():
        state["interaction"] += 1
        state["ticks"] = 0
        state["interaction_at"] = time.time()
        player_preferences()

    def on_interact():
        state["ticks"] = 0  # a restarted interaction is drawn again before we look at it

    def on_label(name, abnormal):
        state["label"] = name
        if name == "start":
            state["starts"] += 1
            emit({"event": "start_label", "count": state["starts"], "titles_before": state["title_seen"]})
            if state["starts"] > state["title_seen"] and state["starts"] > 1:
                finish("loop")  # the story began again without the title screen in between

    def tick():
        if state["done"]:
            return
        if time.time() - state["started_at"] > CONFIG.get("max_seconds", 150):
            finish("time")
            return
        state["ticks"] += 1
        if state["ticks"] < CONFIG.get("settle_ticks", 2) or state["handled"] == state["interaction"]:
            return
        state["handled"] = state["interaction"]
        if state["interaction"] > CONFIG.get("max_interactions", 3000):
            finish("cap")
            return
        try:
            act()
        except CONTROL:
            raise  # Ren'Py's own control flow: ending the interaction, jumps, quitting
        except Exception:
            import traceback
            emit({"event": "checker_error", "error": traceback.format_exc()[-3000:]})
            finish("checker_error")

    def act():
        if renpy.get_screen("_exception") is not None:
            record("error")
            finish("script_error")
            return
        if renpy.get_screen("main_menu") is not None:
            state["title_seen"] += 1
            record("title")
            if not state["story_started"]:
                shot("title")
            else:
                shot("end")
                again = (CONFIG.get("mode") == "explore" and untaken() > 0
                         and state["playthrough"] < CONFIG.get("max_playthroughs", 8))
                if not again:
                    finish("title")
                    return
            state["story_started"] = True
            state["playthrough"] += 1
            state["menu_index"] = 0
            renpy.run(renpy.store.Start())
            return
        if not state["story_started"]:
            state["story_started"] = True
            state["playthrough"] += 1
            emit({"event": "story_without_title"})
        pending = state["pending_menu"]
        if pending is not None:
            location, items = pending
            index = choose(location, items)
            record("menu", choices=[[i[0], i[2]] for i in items], chosen=index, choice_font=choice_font())
            state["last_frame"] = None
            shot("first_menu")
            if index is None:
                finish("menu_without_choice")
                return
            state["taken"].add((location, items[index][0]))
            state["menu_index"] += 1
            renpy.end_interaction(items[index][1])
            return
        if renpy.get_screen("input") is not None:
            # renpy.input: accept what the field holds (its default), as a player pressing Enter would.
            try:
                typed = renpy.get_displayable("input", "input").content
            except Exception:
                typed = u""
            record("input", value=typed)
            renpy.end_interaction(typed)
            return
        kind = "say" if dialogue_widget(_drawn())[1] is not None else "other"
        record(kind)
        if kind == "say":
            shot("first_line")
            state["lines"] = state.get("lines", 0) + 1
            if state["lines"] <= CONFIG.get("line_shots", 0):
                shot("line_%03d" % state["lines"])
            state["last_frame"] = None
        else:
            grab_frame()  # maybe the ending card; reading a frame back is slow, so lines are not kept
        renpy.end_interaction(True)

    renpy.config.start_interact_callbacks.append(on_start_interact)
    renpy.config.interact_callbacks.append(on_interact)
    renpy.config.periodic_callbacks.append(tick)
    _old_label_callback = renpy.config.label_callback

    def _label_callback(name, abnormal):
        on_label(name, abnormal)
        if _old_label_callback is not None:
            _old_label_callback(name, abnormal)

    renpy.config.label_callback = _label_callback
    player_preferences()

    emit({
        "event": "boot",
        "renpy": renpy.version_only,
        "screen": [renpy.config.screen_width, renpy.config.screen_height],
        "fonts": configured_fonts(),
        "has_main_menu": renpy.has_screen("main_menu"),
        "mode": CONFIG.get("mode"),
    })

init 2000 python:
    menu = cvn_playcheck.wrap_menu(menu)
    if "nvl_menu" in globals():
        nvl_menu = cvn_playcheck.wrap_menu(nvl_menu)

# A layered background's camera (comfyvn_parallax.rpy) redraws at cvn_parallax_fps. Offscreen software
# rendering has no vsync, so at a player's 60 frames a second the engine spends all its time drawing
# and the checker's ticks starve (a three-minute limit passed on the demo's first menus). Two frames a
# second still show every plane where it is.
init 1999 python:
    if hasattr(store, "cvn_parallax_fps"):
        store.cvn_parallax_fps = 2
