"""XSS suite: hostile answers streamed through the echo demo app and rendered by the real
bundle in Chromium. No dialog opens, a global sentinel stays untouched, no request leaves
for another origin, and no active content survives in the DOM."""

from __future__ import annotations

import pytest

from atomemo_notebook import ChatWidget
from atomemo_notebook.server import LocalServer

from .harness import Bridge

pytestmark = pytest.mark.browser

NESTED_LIST = "\n".join("  " * i + "- level" for i in range(120))
NESTED_QUOTES = "> " * 300 + "deep"

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<img src=x onerror=\"window.__sentinel='pwned'\">",
    "<svg onload=alert(1)>",
    "<svg><script>alert(1)</script></svg>",
    '<iframe srcdoc="<script>alert(1)</script>"></iframe>',
    '<iframe src="javascript:alert(1)"></iframe>',
    "<xmp><img src=x onerror=alert(1)></xmp>",
    "[click](javascript:alert(1))",
    "[click](JaVaScRiPt:alert(1))",
    "[click](javascript&#58;alert(1))",
    "[click](&#106;avascript:alert(1))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
    "[click](  javascript:alert(1))",
    "[x](vbscript:msgbox(1))",
    '<a href="javascript:alert(1)">x</a>',
    '<a href="data:text/html,<script>alert(1)</script>">d</a>',
    '<button data-commandlinker-command="terminal:create-new">Open a terminal</button>',
    '<a data-commandlinker-command="notebook:run-all-cells" href="#">run all</a>',
    '<form id="test"><input name="attributes"></form>',
    '<img name="getElementById"><img id="__sentinel">',
    "![x](https://attacker.example/leak?c=1)",
    "![x](http://127.0.0.2:9/leak.png)",
    '<img src="https://attacker.example/a.png">',
    '<img srcset="https://attacker.example/1.png 1x">',
    "<link rel=stylesheet href=https://attacker.example/x.css>",
    "<style>@import url(https://attacker.example/x.css);</style>",
    '<div style="background:url(https://attacker.example/bg.png)">bg</div>',
    "```\nunclosed code fence <script>alert(1)</script>\n",
    "~~~js\n<img src=x onerror=alert(1)>",
    "`<img src=x onerror=alert(1)>`",
    NESTED_LIST,
    NESTED_QUOTES,
    "<details open ontoggle=alert(1)>",
    "<body onload=alert(1)>",
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
    '<noscript><p title="</noscript><img src=x onerror=alert(1)>">',
    '<object data="javascript:alert(1)"></object>',
    '<embed src="javascript:alert(1)">',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<base href="https://attacker.example/">',
    "<video><source onerror=alert(1)></video>",
    "<audio src=x onerror=alert(1)>",
    "<input autofocus onfocus=alert(1)>",
    "<marquee onstart=alert(1)>x</marquee>",
    '[x](https://ok.example "t\\" onmouseover=alert(1) x=\\"")',
    "<javascript:alert(1)>",
    "www.attacker.example/x and https://attacker.example/y",
    '<svg><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
    "'\"><script>window.__sentinel=\"pwned\"</script>",
    "| a | <img src=x onerror=alert(1)> |\n|---|---|\n| <script>alert(1)</script> | [x](javascript:alert(1)) |",
]

DOM_CHECK = """() => {
  const problems = [];
  const root = document.querySelector('.am-root');
  for (const tag of ['script','iframe','object','embed','form','input','svg','math','style','link','meta',
                     'base','video','audio','xmp','noscript','marquee','details','img']) {
    for (const el of root.querySelectorAll('.am-answer ' + tag)) problems.push('tag ' + tag);
  }
  for (const el of root.querySelectorAll('*')) {
    for (const attr of el.getAttributeNames()) {
      if (attr.startsWith('on')) problems.push('handler ' + attr + ' on ' + el.tagName);
      if (attr.startsWith('data-commandlinker')) problems.push('commandlinker on ' + el.tagName);
    }
    if (el.closest('.am-answer') && (el.hasAttribute('id') || el.hasAttribute('name') || el.hasAttribute('style')))
      problems.push('id/name/style on ' + el.tagName);
  }
  for (const a of root.querySelectorAll('.am-answer a[href]')) {
    const href = a.getAttribute('href').trim().toLowerCase();
    if (!(href.startsWith('http:') || href.startsWith('https:') || href.startsWith('mailto:')))
      problems.push('href ' + href);
    if (a.getAttribute('rel') !== 'noopener noreferrer') problems.push('rel ' + a.getAttribute('rel'));
  }
  if (window.__sentinel !== 'intact') problems.push('sentinel ' + String(window.__sentinel));
  if (typeof document.getElementById !== 'function') problems.push('document clobbered');
  return problems;
}"""


def moved_on(page) -> None:
    """A round trip from the page through its own origin, started after everything the payloads
    could set off: a request or an alert one of them started is seen before it ends (in place of
    a fixed wait for late ones)."""
    assert page.evaluate("() => fetch('/moved-on').then(r => r.status)") == 404


def test_at_least_forty_payloads():
    assert len(PAYLOADS) >= 40


def test_hostile_answers_render_inert(page, artifacts):
    with LocalServer(chunk_size=7, chunk_delay=0, node_delay=0) as srv:
        app = srv.app("echo")
        widget = ChatWidget(app["app_id"], app["trigger_id"], "xss", api_key=srv.api_key, base_url=srv.base_url)
        widget.booted.result(10)
        bridge = Bridge(page, widget)
        page.evaluate("window.__sentinel = 'intact'")
        failures = []
        for index, payload in enumerate(PAYLOADS):
            reply = widget.ask(payload)
            widget.wait()
            bridge.settle()
            if reply.text != payload:
                failures.append((index, "server did not echo verbatim"))
            for link in page.locator(".am-turn").last.locator(".am-answer a").all():
                link.dispatch_event("mouseover")
            problems = page.evaluate(DOM_CHECK)
            if problems:
                failures.append((index, problems))
        moved_on(page)  # any late network attempt or dialog has shown up by now
        page.screenshot(path=str(artifacts / "xss-suite.png"))
        assert failures == []
        assert bridge.dialogs == []
        assert bridge.foreign_requests == []
        # The transcript holds a window of the newest turns; older ones load on request.
        assert page.locator(".am-turn").count() == 20 and widget.transcript["older"] == len(PAYLOADS) - 20
        while page.locator(".am-load-older").count():
            page.click(".am-load-older")
            bridge.wait_for(lambda: page.locator(".am-turn").count() == len(widget.transcript["turns"]),
                            what="older turns")
        assert page.locator(".am-turn").count() == len(PAYLOADS)
        assert page.evaluate(DOM_CHECK) == []  # the older turns drawn later are inert too
        # The two markdown images are held back as click-to-load buttons; raw <img> tags are text.
        assert page.locator("button.am-image-placeholder").count() == 2


# OdysseyAI's source snippets (file name, preview, link) and follow-ups are untrusted too. The
# emulator's echo agent cites the question itself, as its link when it is shaped like one.
SOURCE_PAYLOADS = [
    "javascript:alert(1)",
    " JaVaScRiPt:window.__sentinel='pwned'",
    "java\tscript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "https://ok.example/a\" onmouseover=\"alert(1)",
    "https://ok.example/<img src=x onerror=alert(1)>",
    "<img src=x onerror=alert(1)>",
    "<script>window.__sentinel='pwned'</script>",
    '<a href="javascript:alert(1)">source</a>',
    "<svg onload=alert(1)>",
    '<button data-commandlinker-command="terminal:create-new">chip</button>',
]

SOURCE_CHECK = """() => {
  const problems = [];
  const root = document.querySelector('.am-root');
  for (const box of root.querySelectorAll('.am-citations, .am-suggestions')) {
    for (const el of box.querySelectorAll('script,img,svg,iframe,object,embed,form,input,style,a:not(.am-citation-title)'))
      problems.push('tag ' + el.tagName);
    for (const el of [box, ...box.querySelectorAll('*')])
      for (const attr of el.getAttributeNames())
        if (attr.startsWith('on') || attr.startsWith('data-commandlinker')) problems.push(attr + ' on ' + el.tagName);
  }
  for (const a of root.querySelectorAll('.am-citations a')) {
    const href = a.getAttribute('href') || '';
    if (!/^https?:\\/\\//i.test(href)) problems.push('href ' + href);
    if (a.getAttribute('rel') !== 'noopener noreferrer' || a.getAttribute('target') !== '_blank')
      problems.push('link opens unsafely');
  }
  if (window.__sentinel !== 'intact') problems.push('sentinel ' + String(window.__sentinel));
  return problems;
}"""


def test_hostile_sources_and_follow_ups_render_inert(page, artifacts):
    with LocalServer(chunk_delay=0, node_delay=0) as srv:
        widget = ChatWidget(system="odyssey", api_key=srv.odyssey_api_key, base_url=srv.odyssey_base_url,
                            workspace_id=srv.odyssey_workspace_id, agent_id="echo", user_id="xss")
        widget.booted.result(10)
        bridge = Bridge(page, widget)
        page.evaluate("window.__sentinel = 'intact'")
        failures = []
        for index, payload in enumerate(SOURCE_PAYLOADS):
            reply = widget.ask(payload)
            widget.wait()
            bridge.settle()
            if [c.title for c in reply.citations] != [payload[:100]] or reply.suggestions != [payload.strip()[:200]]:
                failures.append((index, "the echo agent did not cite and suggest the payload"))
            last = page.locator(".am-turn").last
            last.locator(".am-citations summary").click()
            snippet = last.locator(".am-citation-snippet, .am-citation-title").all_inner_texts()
            shown = " ".join(payload.split())[:60]  # the page collapses white space
            if not any(shown in " ".join(text.split()) for text in snippet):
                failures.append((index, "the payload is not shown as text"))
            for el in last.locator(".am-citations *, .am-suggestion").all():
                el.dispatch_event("mouseover")
            problems = page.evaluate(SOURCE_CHECK)
            if problems:
                failures.append((index, problems))
        # Only an http(s) payload may become a link at all; the others are plain titles.
        links = page.locator(".am-citations a").evaluate_all("els => els.map(a => a.getAttribute('href'))")
        moved_on(page)
        page.screenshot(path=str(artifacts / "xss-sources.png"))
        assert failures == []
        assert all(href.startswith("https://ok.example/") for href in links) and len(links) == 2, links
        assert bridge.dialogs == [] and bridge.foreign_requests == []
