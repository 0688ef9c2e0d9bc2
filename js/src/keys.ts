// Keys and focus stay in the widget: the notebook around it never acts on what is typed or
// clicked inside it.
/** `onEscape` is asked first on Esc; it returns true when it used the key. */
export function keepKeysAndFocus(root: HTMLElement, onEscape: () => boolean): void {
  // The notebook's shortcuts (Shift+Enter runs the cell, A/B/D/M/Z edit it...) never see the
  // keys. Lumino honours data-lm-suppress-shortcuts on the root; other hosts get the
  // propagation stopped.
  for (const type of ["keydown", "keypress", "keyup"] as const) {
    root.addEventListener(type, (e) => {
      if (type === "keydown" && (e as KeyboardEvent).key === "Escape" && onEscape()) e.preventDefault();
      e.stopPropagation();
    });
  }
  // A click anywhere in the widget keeps the focus in it (so Esc stops from anywhere): the
  // host notebook would otherwise take the focus to its cell on the same mousedown.
  root.addEventListener("mousedown", (e) => {
    e.stopPropagation();
    const target = e.target as HTMLElement | null;
    if (!target?.closest("input, textarea, select, button, a, [tabindex]:not(.am-root)")) {
      requestAnimationFrame(() => { if (!root.contains(document.activeElement)) root.focus(); });
    }
  });
}
