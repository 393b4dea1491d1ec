"""The HTML pages of the web login: server-rendered, complete without JavaScript (a meta
refresh waits for the answer), a little nicer with it (the page polls a status endpoint and
moves on at once). Usable on a phone (one column, large targets) and by a screen reader
(landmarks, labels, a live status line). The words are in `bot.texts`."""

from __future__ import annotations

import html
import json
from string import Template

import segno
from aiohttp import web

from bot import texts
from bot.login.weblogin import Page

# Seconds between two looks at the answer: the meta refresh, and the script's polling.
REFRESH_SECONDS = 3
POLL_MILLISECONDS = 1500

_STYLE = """
:root { color-scheme: light dark; font-family: system-ui, sans-serif; line-height: 1.5; }
body { margin: 0; padding: 1rem; display: flex; justify-content: center; }
main { max-width: 28rem; width: 100%; }
h1 { font-size: 1.5rem; margin: 0.5rem 0 1rem; }
.button { display: block; text-align: center; padding: 0.9rem 1rem; border-radius: 0.5rem;
  background: #2481cc; color: #fff; font-weight: 600; font-size: 1.1rem; text-decoration: none; }
.button:focus-visible { outline: 3px solid #f5a623; outline-offset: 2px; }
figure { margin: 1.5rem 0; text-align: center; }
figure svg { width: 12rem; height: 12rem; background: #fff; padding: 0.5rem; }
.number { font-size: 3rem; font-weight: 700; letter-spacing: 0.2rem; text-align: center;
  margin: 0.5rem 0 1rem; }
"""

_DOCUMENT = Template(
    """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>$title</title>
$head
<style>$style</style>
</head>
<body>
<main>
<h1>$title</h1>
$body
</main>
$script
</body>
</html>
"""
)

_WAITING = Template(
    """<p>$intro</p>
<p><a class="button" id="telegram-link" href="$link">$button</a></p>
<figure>
<div role="img" aria-label="$qr_label">$qr</div>
<figcaption>$qr_text</figcaption>
</figure>
<p id="number-label">$number_text</p>
<p class="number" id="match-number" aria-labelledby="number-label">$number</p>
<p id="status" role="status" aria-live="polite">$waiting</p>"""
)

_POLL = Template(
    """<script nonce="$nonce">
(function () {
  var status = $status_url, next = $wait_url;
  function look() {
    fetch(status, {credentials: "same-origin", cache: "no-store"})
      .then(function (r) { return r.ok ? r.json() : {status: "waiting"}; })
      .then(function (a) {
        if (a.status === "waiting") { setTimeout(look, $poll); } else { location.replace(next); }
      })
      .catch(function () { setTimeout(look, $poll * 2); });
  }
  setTimeout(look, $poll);
})();
</script>"""
)


def _document(title: str, body: str, *, head: str = "", script: str = "") -> str:
    return _DOCUMENT.substitute(
        title=html.escape(title), head=head, style=_STYLE, body=body, script=script
    )


def telegram_link(bot_username: str, token: str) -> str:
    """The deep link that opens the bot with `/start <token>`."""
    return f"https://t.me/{bot_username}?start={token}"


def qr_svg(link: str) -> str:
    """The link as a QR code, inline SVG."""
    return str(segno.make(link, error="m").svg_inline(scale=4, border=2))


def waiting_page(
    page: Page, *, bot_username: str, wait_url: str, status_url: str, nonce: str
) -> str:
    """The login page: the Telegram button, its QR code and the number to tap; it looks
    for the answer every few seconds (meta refresh without scripts, polling with them)."""
    link = telegram_link(bot_username, page.link_token)
    body = _WAITING.substitute(
        intro=html.escape(
            texts.PAGE_INTRO.format(client=page.client_name, host=page.redirect_host)
        ),
        link=html.escape(link),
        button=html.escape(texts.PAGE_BUTTON),
        qr_label=html.escape(texts.PAGE_QR_LABEL),
        qr=qr_svg(link),
        qr_text=html.escape(texts.PAGE_QR),
        number_text=html.escape(texts.PAGE_NUMBER),
        number=page.match_number,
        waiting=html.escape(texts.PAGE_WAITING.format(expires=f"{page.expires_at:%H:%M}")),
    )
    refresh = (
        f'<noscript><meta http-equiv="refresh" '
        f'content="{REFRESH_SECONDS};url={html.escape(wait_url)}"></noscript>'
    )
    script = _POLL.substitute(
        nonce=nonce,
        status_url=json.dumps(status_url),
        wait_url=json.dumps(wait_url),
        poll=POLL_MILLISECONDS,
    )
    return _document(
        texts.PAGE_TITLE.format(client=page.client_name), body, head=refresh, script=script
    )


def expired_page(restart_url: str) -> str:
    """After 5 minutes without an answer: say so, and offer to start again."""
    body = (
        f"<p>{html.escape(texts.PAGE_EXPIRED)}</p>\n"
        f'<p><a class="button" href="{html.escape(restart_url)}">'
        f"{html.escape(texts.PAGE_RESTART)}</a></p>"
    )
    return _document(texts.PAGE_EXPIRED_TITLE, body)


def message_page(title: str, *lines: str) -> str:
    """A page that only says something (errors, "already done")."""
    return _document(title, "\n".join(f"<p>{html.escape(line)}</p>" for line in lines))


def html_response(body: str, *, status: int = 200, nonce: str | None = None) -> web.Response:
    """A page as the response: never cached, never framed, scripts only with `nonce`."""
    script = f"'nonce-{nonce}'" if nonce else "'none'"
    return web.Response(
        text=body,
        status=status,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": (
                f"default-src 'none'; script-src {script}; style-src 'unsafe-inline'; "
                "img-src data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'"
            ),
        },
    )
