"""Bytes typed at the terminal, as key names: what the dashboard's input state acts on.

A terminal in raw mode sends plain characters for letters, control bytes for Enter, Backspace and
Ctrl-keys, and escape sequences (CSI `ESC [ ... final` or SS3 `ESC O x`) for arrows and paging
keys. `decode` turns a chunk read from the terminal into names; a lone ESC (not followed by `[`
or `O` in the same read) is the Esc key. Unknown sequences are swallowed whole, so a key the
dashboard does not know never reaches the screen or a text prompt.
"""

from __future__ import annotations

UP, DOWN, LEFT, RIGHT = "up", "down", "left", "right"
PGUP, PGDN, HOME, END = "pgup", "pgdn", "home", "end"
ENTER, ESC, BACKSPACE, TAB, CTRL_C, CTRL_U = "enter", "esc", "backspace", "tab", "ctrl-c", "ctrl-u"

_CSI_FINAL = {"A": UP, "B": DOWN, "C": RIGHT, "D": LEFT, "H": HOME, "F": END}
_CSI_TILDE = {"1": HOME, "7": HOME, "4": END, "8": END, "5": PGUP, "6": PGDN}
_CONTROL = {"\r": ENTER, "\n": ENTER, "\x7f": BACKSPACE, "\x08": BACKSPACE, "\t": TAB,
            "\x03": CTRL_C, "\x15": CTRL_U}


def decode(data: str) -> list[str]:
    """Key names in `data`: printable characters as themselves, others by the names above."""
    keys: list[str] = []
    i, n = 0, len(data)
    while i < n:
        ch = data[i]
        if ch == "\x1b":
            if i + 1 >= n or data[i + 1] not in "[O":
                keys.append(ESC)
                i += 1
                continue
            if data[i + 1] == "O":  # SS3: ESC O A (arrows in application mode), ESC O H/F
                if i + 2 < n:
                    name = _CSI_FINAL.get(data[i + 2])
                    if name:
                        keys.append(name)
                i += 3
                continue
            j = i + 2
            while j < n and not ("@" <= data[j] <= "~"):  # parameters and intermediates
                j += 1
            if j >= n:
                break  # a cut sequence: drop it rather than type its bytes
            final, params = data[j], data[i + 2:j]
            name = _CSI_TILDE.get(params.split(";")[0]) if final == "~" else _CSI_FINAL.get(final)
            if name:
                keys.append(name)
            i = j + 1
            continue
        name = _CONTROL.get(ch)
        if name:
            keys.append(name)
        elif ch.isprintable():
            keys.append(ch)
        i += 1
    return keys
