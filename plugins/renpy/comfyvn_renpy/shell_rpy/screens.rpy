## The game's interface: styles and screens, written by ComfyVN for Ren'Py 8.
## Sizes, colours and fonts are gui.* variables (gui.rpy); the pictures are in game/gui/.
## Screen names are Ren'Py's usual ones, so anyone who knows Ren'Py finds their way around.

init offset = -1


################################################################################
## Shared styles
################################################################################

style default:
    font gui.text_font
    size gui.text_size
    color gui.text_color
    language gui.language

style input:
    color gui.accent_color
    adjust_spacing False

style hyperlink_text:
    color gui.accent_color
    hover_color gui.hover_color
    hover_underline True

style gui_text:
    font gui.interface_text_font
    size gui.interface_text_size
    color gui.interface_text_color

style button:
    padding gui.button_padding

style button_text is gui_text:
    color gui.idle_color
    hover_color gui.hover_color
    selected_color gui.accent_color
    insensitive_color gui.insensitive_color
    yalign 0.5

style label_text is gui_text:
    color gui.accent_color
    size gui.label_text_size

style prompt_text is gui_text

style bar:
    ysize gui.bar_size
    left_bar Solid(gui.accent_color)
    right_bar Solid("#ffffff26")

style vbar:
    xsize gui.bar_size
    top_bar Solid("#ffffff26")
    bottom_bar Solid(gui.accent_color)

style scrollbar:
    ysize gui.scrollbar_size
    base_bar Solid("#ffffff14")
    thumb Solid("#ffffff66")
    unscrollable "hide"

style vscrollbar:
    xsize gui.scrollbar_size
    base_bar Solid("#ffffff14")
    thumb Solid("#ffffff66")
    unscrollable "hide"

style slider:
    ysize gui.bar_size
    left_bar Solid(gui.accent_color)
    right_bar Solid("#ffffff26")
    thumb "gui/slider/thumb_idle.png"
    hover_thumb "gui/slider/thumb_hover.png"

style frame:
    padding gui.frame_padding
    background Frame("gui/frame.png", gui.frame_borders)


################################################################################
## In-game screens
################################################################################

## The text box. `who` is the speaker's name (None for narration), `what` the line. Dialogue is drawn
## at gui.text_size in a column gui.dialogue_width wide, the page size the exporter measured against.
screen say(who, what):
    style_prefix "say"

    window:
        id "window"

        if who is not None:
            window:
                id "namebox"
                style "namebox"
                text who id "who"

        text what id "what"

    ## A character card's portrait, beside the text box (when that character is not on the stage).
    if not renpy.variant("small"):
        add SideImage() xalign 0.0 yalign 1.0

init python:
    config.character_id_prefixes.append("namebox")

style window is default
style say_label is default
style say_dialogue is default
style say_thought is say_dialogue
style namebox is default
style namebox_label is say_label

style window:
    xalign 0.5
    xfill True
    yalign 1.0
    ysize gui.textbox_height
    background Image("gui/textbox.png", xalign=0.5, yalign=1.0)

style namebox:
    xpos gui.name_xpos
    xanchor 0.0
    ypos gui.name_ypos
    yanchor 1.0
    background Frame("gui/namebox.png", gui.namebox_borders)
    padding gui.namebox_padding

style say_label:
    font gui.name_text_font
    size gui.name_text_size
    color gui.accent_color
    yalign 0.5

style say_dialogue:
    size gui.text_size
    line_spacing gui.line_spacing
    xpos gui.dialogue_xpos
    xsize gui.dialogue_width
    ypos gui.dialogue_ypos
    adjust_spacing False


## renpy.input's prompt and field, in the text box.
screen input(prompt):
    style_prefix "input"

    window:
        vbox:
            xpos gui.dialogue_xpos
            xsize gui.dialogue_width
            ypos gui.dialogue_ypos

            text prompt style "input_prompt"
            input id "input"

style input_prompt is default


## The choices of a menu, stacked in the space above the text box: the menu's caption (the line being
## answered) stays readable in the text box below them. Many choices scroll with the mouse wheel.
screen choice(items):
    style_prefix "choice"

    fixed:
        area (0, gui.choice_top, config.screen_width, gui.choice_area_height)

        viewport:
            xalign 0.5
            yalign 0.5
            mousewheel True
            draggable True

            vbox:
                for i in items:
                    textbutton i.caption action i.action

style choice_viewport is viewport
style choice_vbox is vbox
style choice_button is button
style choice_button_text is button_text

style choice_viewport:
    ## Only as large as the choices, so that it can be centred in the space above the text box.
    xfill False
    yfill False

style choice_vbox:
    spacing gui.choice_spacing

style choice_button:
    xsize gui.choice_button_width
    padding gui.choice_button_padding
    background Frame("gui/button/choice_idle_background.png", gui.choice_button_borders)
    hover_background Frame("gui/button/choice_hover_background.png", gui.choice_button_borders)

style choice_button_text:
    font gui.text_font
    size gui.choice_button_text_size
    xalign 0.5
    text_align 0.5
    color "#e8e6ee"
    hover_color "#ffffff"
    insensitive_color gui.insensitive_color


## Quick menu: just above the text box, on the right.
screen quick_menu():
    zorder 100

    if quick_menu:
        # On a strip of its own: over a busy background or a sprite, bare labels could not be read.
        frame:
            style "quick_frame"
            xalign 0.98
            ypos gui.textbox_top
            yanchor 1.0

            hbox:
                style_prefix "quick"

                textbutton _("Back") action Rollback()
                textbutton _("History") action ShowMenu("history")
                textbutton _("Skip") action Skip() alternate Skip(fast=True, confirm=True)
                textbutton _("Auto") action Preference("auto-forward", "toggle")
                textbutton _("Save") action ShowMenu("save")
                textbutton _("Q.Save") action QuickSave()
                textbutton _("Q.Load") action QuickLoad()
                textbutton _("Prefs") action ShowMenu("preferences")

init python:
    config.overlay_screens.append("quick_menu")

default quick_menu = True

style quick_frame is empty
style quick_frame:
    background Solid("#0b0d14c8")
    padding (6, 0, 6, 0)

style quick_button is button
style quick_button_text is button_text

style quick_button:
    padding gui.button_padding

style quick_button_text:
    size gui.quick_button_text_size
    color "#d8dbe6"
    hover_color gui.hover_color
    selected_color gui.accent_color
    outlines [(1, "#000000aa", 0, 0)]


################################################################################
## Title screen and game menu
################################################################################

## The menu on the title screen and on the left of every game menu page.
screen navigation():
    vbox:
        style_prefix "navigation"
        xpos gui.navigation_xpos
        ypos (gui.main_menu_navigation_ypos if main_menu else 0.5)
        yanchor (0.0 if main_menu else 0.5)
        spacing gui.navigation_spacing

        if main_menu:
            textbutton _("Start") action Start()
        else:
            textbutton _("History") action ShowMenu("history")
            textbutton _("Save") action ShowMenu("save")

        textbutton _("Load") action ShowMenu("load")
        textbutton _("Preferences") action ShowMenu("preferences")

        if _in_replay:
            textbutton _("End Replay") action EndReplay(confirm=True)
        elif not main_menu:
            textbutton _("Main Menu") action MainMenu()

        textbutton _("About") action ShowMenu("about")

        if renpy.variant("pc"):
            ## Leaving from inside the story asks first (the confirm screen); the title screen just quits.
            textbutton _("Quit") action Quit(confirm=not main_menu)

style navigation_button is button
style navigation_button_text is button_text

style navigation_button:
    size_group "navigation"
    padding gui.button_padding

style navigation_button_text:
    size gui.navigation_text_size
    color gui.text_color
    hover_color gui.accent_color
    selected_color gui.accent_color
    outlines [(2, "#00000066", 0, 0)]


## The title screen: the game's name over its key art, and the navigation.
screen main_menu():
    tag menu

    add "cvn_keyart"
    add Transform("gui/overlay/main_menu.png", xysize=(config.screen_width, config.screen_height))

    vbox:
        style "main_menu_vbox"
        text "[config.name!q]" style "main_menu_title"
        if config.version:
            text "[config.version!q]" style "main_menu_version"

    use navigation

style main_menu_vbox is vbox
style main_menu_title is gui_text
style main_menu_version is gui_text

style main_menu_vbox:
    xpos gui.navigation_xpos
    ypos gui.main_menu_title_ypos
    xmaximum gui.main_menu_title_width
    spacing gui.pref_spacing

style main_menu_title:
    font gui.name_text_font
    size gui.game_title_size
    color gui.text_color
    outlines [(3, "#00000088", 0, 2)]

style main_menu_version:
    size gui.version_text_size
    color gui.idle_color


## The frame of every game menu page (Save, Load, Preferences, History, About): the blurred backdrop
## under a dark veil, the navigation on the left, the page's title and content on the right.
screen game_menu(title, scroll=None, yinitial=0.0):
    style_prefix "game_menu"

    add "bg cvn_backdrop"
    add Transform("gui/overlay/game_menu.png", xysize=(config.screen_width, config.screen_height))

    frame:
        style "game_menu_content_frame"

        if scroll == "viewport":
            viewport:
                yinitial yinitial
                scrollbars "vertical"
                mousewheel True
                draggable True
                pagekeys True
                side_yfill True

                vbox:
                    transclude
        else:
            transclude

    use navigation

    textbutton _("Return"):
        style "return_button"
        action Return()

    label title

    if main_menu:
        key "game_menu" action ShowMenu("main_menu")

style game_menu_content_frame is empty
style game_menu_viewport is viewport
style game_menu_side is side
style game_menu_vscrollbar is vscrollbar
style game_menu_label is label
style game_menu_label_text is label_text
style return_button is navigation_button
style return_button_text is navigation_button_text

style game_menu_content_frame:
    xpos gui.menu_content_xpos
    ypos gui.menu_content_ypos
    xsize gui.menu_content_width
    ysize gui.menu_content_height

style game_menu_side:
    spacing gui.pref_spacing

style game_menu_label:
    xpos gui.menu_content_xpos
    ypos gui.menu_title_ypos

style game_menu_label_text:
    size gui.title_text_size
    color gui.accent_color

style return_button:
    xpos gui.navigation_xpos
    yalign 1.0
    yoffset -gui.navigation_spacing * 4


## About: the game, its version, its credits, and what it was made with.
screen about():
    tag menu

    use game_menu(_("About"), scroll="viewport"):
        style_prefix "about"

        vbox:
            spacing gui.pref_spacing

            label "[config.name!q]"
            text _("Version [config.version!q]")

            if gui.about:
                text "[gui.about!q]"

            null height gui.pref_spacing
            text _("Made with ComfyVN.")
            text _("Made with {a=https://www.renpy.org/}Ren'Py{/a} [renpy.version_only].")

style about_label is label
style about_label_text is label_text
style about_text is gui_text

style about_text:
    xmaximum gui.menu_content_width - gui.scrollbar_size * 3


## Save and Load share one page of slots.
screen save():
    tag menu
    use file_slots(_("Save"))

screen load():
    tag menu
    use file_slots(_("Load"))

screen file_slots(title):
    default page_name_value = FilePageNameInputValue(pattern=_("Page {}"), auto=_("Automatic saves"), quick=_("Quick saves"))

    use game_menu(title):

        fixed:
            ## The page name; click it to rename the page.
            button:
                style "page_label"
                key_events True
                xalign 0.5
                action page_name_value.Toggle()

                input:
                    style "page_label_text"
                    value page_name_value

            grid gui.file_slot_cols gui.file_slot_rows:
                style_prefix "slot"
                xalign 0.5
                yalign 0.45
                spacing gui.slot_spacing

                for i in range(gui.file_slot_cols * gui.file_slot_rows):
                    $ slot = i + 1

                    button:
                        action FileAction(slot)

                        has vbox

                        add FileScreenshot(slot) xalign 0.5

                        text FileTime(slot, format=_("{#file_time}%A, %B %d %Y, %H:%M"), empty=_("empty slot")):
                            style "slot_time_text"

                        text FileSaveName(slot):
                            style "slot_name_text"

                        key "save_delete" action FileDelete(slot)

            hbox:
                style_prefix "page"
                xalign 0.5
                yalign 1.0
                spacing gui.navigation_spacing

                textbutton _("<") action FilePagePrevious()

                if config.has_autosave:
                    textbutton _("{#auto_page}A") action FilePage("auto")

                if config.has_quicksave:
                    textbutton _("{#quick_page}Q") action FilePage("quick")

                for page in range(1, 10):
                    textbutton "[page]" action FilePage(page)

                textbutton _(">") action FilePageNext()

style page_label is label
style page_label_text is label_text
style page_button is button
style page_button_text is button_text
style slot_button is button
style slot_button_text is button_text
style slot_time_text is slot_button_text
style slot_name_text is slot_button_text

style page_label:
    xpadding gui.navigation_spacing * 4
    ypadding gui.navigation_spacing

style page_label_text:
    text_align 0.5
    layout "subtitle"
    color gui.text_color
    hover_color gui.hover_color

style page_button_text:
    size gui.page_button_text_size

style slot_button:
    xsize gui.slot_button_width
    ysize gui.slot_button_height
    padding gui.slot_button_padding
    background Frame("gui/button/slot_idle_background.png", gui.choice_button_borders)
    hover_background Frame("gui/button/slot_hover_background.png", gui.choice_button_borders)

style slot_button_text:
    size gui.slot_button_text_size
    xalign 0.5
    text_align 0.5
    color gui.idle_color
    hover_color gui.text_color


## Preferences: display mode, skipping, text speed, auto-forward time and volumes.
screen preferences():
    tag menu

    use game_menu(_("Preferences"), scroll="viewport"):

        vbox:
            hbox:
                box_wrap True
                spacing gui.pref_spacing * 3

                if renpy.variant("pc") or renpy.variant("web"):
                    vbox:
                        style_prefix "radio"
                        label _("Display")
                        textbutton _("Window") action Preference("display", "window")
                        textbutton _("Fullscreen") action Preference("display", "fullscreen")

                vbox:
                    style_prefix "check"
                    label _("Skip")
                    textbutton _("Unseen Text") action Preference("skip", "toggle")
                    textbutton _("After Choices") action Preference("after choices", "toggle")
                    textbutton _("Transitions") action InvertSelected(Preference("transitions", "toggle"))

            null height (2 * gui.pref_spacing)

            hbox:
                style_prefix "slider"
                box_wrap True
                spacing gui.pref_spacing * 4

                vbox:
                    label _("Text Speed")
                    bar value Preference("text speed")

                    label _("Auto-Forward Time")
                    bar value Preference("auto-forward time")

                vbox:
                    if config.has_music:
                        label _("Music Volume")
                        bar value Preference("music volume")

                    if config.has_sound:
                        label _("Sound Volume")
                        bar value Preference("sound volume")

                    if config.has_voice:
                        label _("Voice Volume")
                        bar value Preference("voice volume")

                    if config.has_music or config.has_sound or config.has_voice:
                        null height gui.pref_spacing
                        textbutton _("Mute All"):
                            action Preference("all mute", "toggle")
                            style "mute_all_button"

style pref_label is label
style pref_label_text is label_text
style pref_vbox is vbox

style radio_label is pref_label
style radio_label_text is pref_label_text
style radio_button is button
style radio_button_text is button_text
style radio_vbox is pref_vbox

style check_label is pref_label
style check_label_text is pref_label_text
style check_button is button
style check_button_text is button_text
style check_vbox is pref_vbox

style slider_label is pref_label
style slider_label_text is pref_label_text
style slider_slider is slider
style slider_button is button
style slider_button_text is button_text
style slider_vbox is pref_vbox

style mute_all_button is check_button
style mute_all_button_text is check_button_text

style pref_label:
    top_margin gui.pref_spacing
    bottom_margin gui.navigation_spacing

style pref_vbox:
    xsize gui.pref_column_width

style radio_button:
    selected_background Frame("gui/button/slot_hover_background.png", gui.choice_button_borders)

style check_button:
    selected_background Frame("gui/button/slot_hover_background.png", gui.choice_button_borders)

style slider_vbox:
    xsize gui.slider_width + gui.pref_spacing * 4

style slider_slider:
    xsize gui.slider_width


## History: the lines said so far (the backlog), newest at the bottom.
screen history():
    tag menu

    ## Never predicted: it can be long.
    predict False

    use game_menu(_("History"), scroll="viewport", yinitial=1.0):
        style_prefix "history"

        for h in _history_list:
            hbox:
                spacing gui.history_spacing

                if h.who:
                    label h.who:
                        style "history_name"
                        substitute False
                        if "color" in h.who_args:
                            text_color h.who_args["color"]
                else:
                    null width gui.history_name_width

                $ what = renpy.filter_text_tags(h.what, allow=gui.history_allow_tags)
                text what:
                    substitute False

        if not _history_list:
            label _("The dialogue history is empty.")

define gui.history_allow_tags = {"alt", "noalt", "rt", "rb", "art", "b", "i", "s", "u"}

style history_hbox is hbox
style history_name is label
style history_name_text is label_text
style history_text is gui_text
style history_label is label
style history_label_text is label_text

style history_hbox:
    bottom_margin gui.history_spacing

style history_name:
    xsize gui.history_name_width

style history_name_text:
    size gui.interface_text_size
    xalign 1.0
    text_align 1.0

style history_text:
    font gui.text_font
    xsize gui.history_text_width


################################################################################
## Dialogs and indicators
################################################################################

## Yes/no questions: quitting, overwriting a save, loading over unsaved progress, leaving to the title.
screen confirm(message, yes_action, no_action):
    modal True
    zorder 200
    style_prefix "confirm"

    add Solid("#000000b3")

    frame:
        vbox:
            xalign 0.5
            yalign 0.5
            spacing gui.pref_spacing * 3

            label _(message):
                style "confirm_prompt"
                xalign 0.5

            hbox:
                xalign 0.5
                spacing gui.navigation_width // 4

                textbutton _("Yes") action yes_action
                textbutton _("No") action no_action

    ## Right-click or Escape answers "No".
    key "game_menu" action no_action

style confirm_frame is frame
style confirm_prompt is label
style confirm_prompt_text is label_text
style confirm_button is button
style confirm_button_text is button_text

style confirm_frame:
    xalign 0.5
    yalign 0.5
    xmaximum gui.confirm_width

style confirm_prompt_text:
    color gui.text_color
    size gui.interface_text_size
    text_align 0.5
    layout "subtitle"

style confirm_button_text:
    size gui.navigation_text_size


## Shown while skipping.
screen skip_indicator():
    zorder 100
    style_prefix "skip"

    frame:
        hbox:
            spacing gui.navigation_spacing
            text _("Skipping")
            text "▸" at delayed_blink(0.0, 1.0) style "skip_triangle"
            text "▸" at delayed_blink(0.2, 1.0) style "skip_triangle"
            text "▸" at delayed_blink(0.4, 1.0) style "skip_triangle"

transform delayed_blink(delay, cycle):
    alpha .5

    pause delay

    block:
        linear .2 alpha 1.0
        pause .2
        linear .2 alpha 0.5
        pause (cycle - .4)
        repeat

style skip_frame is frame
style skip_text is gui_text
style skip_triangle is skip_text

style skip_frame:
    ypos gui.skip_ypos
    padding gui.button_padding

style skip_text:
    size gui.notify_text_size

style skip_triangle:
    ## DejaVu Sans has the triangle whatever font the game uses for its text.
    font "DejaVuSans.ttf"


## Short messages, such as "Quick save complete."
screen notify(message):
    zorder 100
    style_prefix "notify"

    frame at notify_appear:
        text "[message!tq]"

    timer 3.25 action Hide("notify")

transform notify_appear:
    on show:
        alpha 0
        linear .25 alpha 1.0
    on hide:
        linear .5 alpha 0.0

style notify_frame is frame
style notify_text is gui_text

style notify_frame:
    ypos gui.notify_ypos
    padding gui.button_padding

style notify_text:
    size gui.notify_text_size


################################################################################
## NVL mode: long narration on a full-screen page
################################################################################

screen nvl(dialogue, items=None):
    window:
        style "nvl_window"

        has vbox:
            spacing gui.nvl_spacing

        use nvl_dialogue(dialogue)

        for i in items:
            textbutton i.caption:
                action i.action
                style "nvl_button"

    add SideImage() xalign 0.0 yalign 1.0

screen nvl_dialogue(dialogue):
    for d in dialogue:
        window:
            id d.window_id

            vbox:
                if d.who is not None:
                    text d.who:
                        id d.who_id

                text d.what:
                    id d.what_id

define config.nvl_list_length = gui.nvl_list_length

style nvl_window is default
style nvl_entry is default
style nvl_label is say_label
style nvl_dialogue is say_dialogue
style nvl_thought is nvl_dialogue
style nvl_button is button
style nvl_button_text is button_text

style nvl_window:
    xfill True
    yfill True
    background Solid("#10131fe0")
    top_padding gui.nvl_top

style nvl_entry:
    xpos gui.nvl_text_xpos
    xsize gui.nvl_text_width

style nvl_label:
    size gui.name_text_size
    xpos 0
    ypos 0
    yanchor 0.0

style nvl_dialogue:
    xpos 0
    ypos 0
    xsize gui.nvl_text_width

style nvl_button:
    xpos gui.nvl_text_xpos

style nvl_button_text:
    size gui.text_size


################################################################################
## The end of the story
################################################################################

## Shown after the story's last line, before the title screen comes back.
screen cvn_the_end():
    zorder 150

    add "cvn_keyart"
    add Solid("#000000c0")

    ## In the title screen's column: the key art keeps its pictures on the right half.
    vbox:
        xpos gui.navigation_xpos
        yalign 0.45
        spacing gui.pref_spacing * 2

        text _("The End") style "cvn_end_title"
        text "[config.name!q]" style "cvn_end_game"
        null height gui.pref_spacing * 3
        text _("Click to return to the title screen.") style "cvn_end_hint"

style cvn_end_title is gui_text
style cvn_end_game is gui_text
style cvn_end_hint is gui_text

style cvn_end_title:
    font gui.name_text_font
    size gui.end_title_size
    color gui.accent_color
    xalign 0.0

style cvn_end_game:
    size gui.title_text_size
    color gui.text_color
    xalign 0.0
    text_align 0.0
    xmaximum gui.main_menu_title_width

style cvn_end_hint:
    size gui.notify_text_size
    color gui.idle_color
    xalign 0.0
