// The one place HTML from an answer is made safe. Markdown is rendered by `marked` with raw
// HTML escaped, then the HTML is sanitized by DOMPurify: no scripts or handlers, no ids or
// names (no DOM clobbering), no data-* (no JupyterLab command linkers), no class but a code
// block's `language-x`, http(s)/mailto links
// only and opened with rel="noopener noreferrer", remote images held back until clicked.
import DOMPurify from "dompurify";

const SAFE_LINK = /^(https?:|mailto:)/i;
const LANGUAGE = /^language-[\w+#-]{1,32}$/;
const FORBID_TAGS = ["style", "form", "input", "button", "textarea", "select", "option", "iframe", "frame",
  "frameset", "object", "embed", "xmp", "noscript", "svg", "math", "template", "base", "link", "meta",
  "video", "audio", "source", "picture"];

let purifier: ReturnType<typeof DOMPurify> | null = null;

function getPurifier(): ReturnType<typeof DOMPurify> {
  if (purifier) return purifier;
  const p = DOMPurify(window);
  // A code block's language class survives (for colouring), and nothing else named class.
  p.addHook("uponSanitizeAttribute", (node, data) => {
    if (data.attrName === "class" && (node as Element).tagName === "CODE" && LANGUAGE.test(data.attrValue)) {
      data.forceKeepAttr = true;
    }
  });
  p.addHook("afterSanitizeAttributes", (node) => {
    const el = node as Element;
    if (el.tagName === "A") {
      const href = el.getAttribute("href") ?? "";
      if (!SAFE_LINK.test(href.trim())) el.removeAttribute("href");
      el.setAttribute("target", "_blank");
      el.setAttribute("rel", "noopener noreferrer");
    }
    if (el.tagName === "IMG") {
      const src = el.getAttribute("src") ?? "";
      el.removeAttribute("src");
      el.removeAttribute("srcset");
      if (/^https?:/i.test(src.trim())) el.setAttribute("data-am-src", src.trim());
    }
  });
  // Configured once: passing a config to every sanitize() call re-parses it per block.
  p.setConfig({
    RETURN_DOM_FRAGMENT: true,
    FORBID_TAGS,
    FORBID_ATTR: ["id", "name", "style", "class", "srcset", "formaction", "xlink:href", "action"],
    ALLOW_DATA_ATTR: false,
    ALLOW_ARIA_ATTR: false,
    ALLOWED_URI_REGEXP: /^(?:https?:|mailto:)/i,
  });
  purifier = p;
  return p;
}

/** A link taken from an answer's data (a source, a file): http(s) only, else none. The same
 *  rule as links inside answers; the kernel filters too, this is the last word. */
export function safeLink(url: string | null | undefined): string | null {
  const trimmed = (url ?? "").trim();
  return /^https?:\/\//i.test(trimmed) ? trimmed : null;
}

/** Sanitize HTML into a fragment that is safe to insert into the notebook's DOM. */
export function sanitize(html: string): DocumentFragment {
  const fragment = getPurifier().sanitize(html) as unknown as DocumentFragment;
  holdBackImages(fragment);
  return fragment;
}

/** A remote image becomes a button; the request leaves only when the user clicks it. */
function holdBackImages(root: DocumentFragment): void {
  for (const img of Array.from(root.querySelectorAll("img"))) {
    const src = img.getAttribute("data-am-src");
    const alt = img.getAttribute("alt") ?? "";
    const button = document.createElement("button");
    button.type = "button";
    button.className = "am-image-placeholder";
    if (!src) {
      button.textContent = `🖼 image removed${alt ? `: ${alt}` : ""}`;
      button.disabled = true;
    } else {
      let host = "";
      try { host = new URL(src).host; } catch { host = "unknown host"; }
      button.textContent = `🖼 Load image from ${host}${alt ? ` (${alt})` : ""}`;
      button.addEventListener("click", () => {
        const shown = document.createElement("img");
        shown.alt = alt;
        shown.referrerPolicy = "no-referrer";
        shown.src = src;
        button.replaceWith(shown);
      });
    }
    img.replaceWith(button);
  }
}
