"""Every sentence a user reads. Plain language; no error text, URL or code from elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime

# /help: the introduction, then one line per command of bot.telegram.commands.COMMANDS that
# has a help line (admins also get theirs, in a private chat).
HELP = "I log you in with your phone number, no password needed.\n\n{commands}"
ADMIN_HELP = "\n\nAdmin: {commands}"
HELP_LINE = "{usage} - {help}"
HELP_LOGIN = "prove your number with a one-time code sent by SMS (or a call)"
HELP_WHOAMI = "see whether you are logged in, and with which number"
HELP_LOGOUT = "log out"
HELP_CANCEL = "stop a login in progress"
HELP_PRIVACY = "what I store and why"
HELP_FORGET = "erase everything I store about this chat"
HELP_HELP = "this message"
HELP_USERS = "the verified users"
# The command menu (setMyCommands).
MENU_LOGIN = "Log in with your phone number"
MENU_WHOAMI = "Am I logged in, and with which number?"
MENU_LOGOUT = "Log out"
MENU_CANCEL = "Stop a login in progress"
MENU_HELP = "What this bot does"

ASK_NUMBER = (
    "Send me your phone number with its country code, such as +44 7400 123123, "
    "or tap the button below to share the number of this Telegram account."
)
ASK_NUMBER_LOGGED_IN = (
    "You are logged in as {number}. To change it, send another number (with its country "
    "code) or tap the button below; /cancel keeps things as they are."
)
RESTARTED = "Starting over: the earlier code will no longer work."
SHARE_CONTACT_BUTTON = "Share my phone number"

NOT_A_NUMBER = (
    "That does not look like a valid phone number. Send it with the country code, "
    "such as +44 7400 123123 or 0044 7400 123123, or /cancel."
)
NOT_YOUR_CONTACT = (
    "Please share your own number with the button below (or type it); "
    "I can only send a code to the number of the person logging in."
)
WAITING_FOR_NUMBER = "I am waiting for your phone number (or /cancel to stop)."

CODE_SENT = (
    "A {length}-digit code is on its way to {number} {how}. Send me the code here. "
    "It expires at {expires} UTC."
)
# The code-sent (or already-sent) message, with the hint about the buttons under it.
CODE_SENT_WITH_HINT = "{sent}\n\n{hint}"
# How the code travels, by the channels it goes by from now (VERIFY_WORKFLOW).
GATEWAY_HOW = (
    "as a Telegram message from \u201cVerification Codes\u201d; if it does not come, you will get "
)
CHANNELS = {
    ("sms", "voice"): "by SMS; if it does not arrive, you will get a call",
    ("voice", "sms"): "by a phone call; if you miss it, you will get an SMS",
    ("sms",): "by SMS",
    ("voice",): "by a phone call",
    ("telegram", "sms", "voice"): GATEWAY_HOW + "an SMS, then a call",
    ("telegram", "voice", "sms"): GATEWAY_HOW + "a call, then an SMS",
    ("telegram", "sms"): GATEWAY_HOW + "an SMS",
    ("telegram", "voice"): GATEWAY_HOW + "a call",
}
# After "Send by SMS instead", or when the Telegram code was not used in time.
SMS_INSTEAD = (
    "A new code is on its way to {number} {how}; the Telegram code no longer works. "
    "Send me the new code here."
)
GATEWAY_TIMED_OUT = (
    "The Telegram code was not used in time, so a new code is on its way to {number} {how}; "
    "the Telegram code no longer works. Send me the new code here."
)
CODE_ALREADY_SENT = (
    "A code was already sent to {number} and is still valid until {expires} UTC. "
    "Send me that code here."
)
ALREADY_YOURS = "You are already logged in as {number}. Nothing changed."
REFUSED_COUNTRY = (
    "Sorry, I cannot send codes to numbers in that country. Send another number or /cancel."
)
REFUSED_PREFIX = "Sorry, I cannot send codes to that number. Send another number or /cancel."
LIMITED = (
    "Too many codes were asked for this chat or this number. You can try again after "
    "{when} UTC. Send another number or /cancel."
)
LIMITED_GLOBAL = (
    "I am receiving too many login requests right now. Please try again after {when} UTC."
)
INVALID_NUMBER = (
    "I could not send a code to that number. Check it and send it again with its country code, "
    "or /cancel."
)
NUMBER_BUSY = (
    "Another login is waiting for a code sent to that number. Try again in a few minutes, "
    "or send another number."
)
BUSY = "Too many codes are being sent right now. Please try again in a minute."
UNAVAILABLE = "Sorry, I cannot send codes right now. Please try again in a few minutes."
RESEND_FAILED = "The earlier code no longer works: send your number again to get a new one."

WAITING_FOR_CODE = "I am waiting for the {length}-digit code sent to {number} (or /cancel to stop)."
NOT_A_CODE = "The code is {length} digits, such as 123456. Please send just the digits."
WRONG_CODE = "That code is not right. {tries} left."
TRIES = {1: "1 try", 2: "2 tries"}
TOO_MANY_WRONG = "Too many wrong codes, so that code no longer works. Send /login to get a new one."
CODE_EXPIRED = "That code has expired. Send /login to get a new one."
CHECK_UNAVAILABLE = "Sorry, I could not check the code just now. Please send it again."
VERIFIED = "You are logged in as {number}."

CANCELLED = "Login cancelled."
NOTHING_TO_CANCEL = "There is no login in progress."
LOGGED_OUT = "You are logged out. {number} is no longer linked to this chat."
NOT_LOGGED_IN = "You are not logged in. Send /login to start."
WHOAMI = "You are logged in as {number} (since {since} UTC, proven by {method})."
WHOAMI_FLOW = "You are not logged in yet; a login is in progress. /cancel stops it."

OUTSIDE_FLOW = "Send /login to log in with your phone number, or /help to see what I can do."
OUTSIDE_FLOW_LOGGED_IN = "You are logged in as {number}. /whoami shows your login, /logout ends it."
EXPIRED_NOTICE = "Your code expired before it was used. Send /login to get a new one."
PRIVATE_ONLY = "For your privacy, logging in happens in a private chat with me: {link}"

USERS_EMPTY = "No verified users yet."
USERS_HEADER = "Verified users ({total}), page {page} of {pages}:"
USERS_LINE = "{number} · chat {chat_id} · {name} · {when}"

APOLOGY = "Sorry, something went wrong on my side. Please try again in a moment."
NO_SENDER = (
    "I cannot tell who sent that, so I cannot act on it. Please write to me from your own "
    "Telegram account."
)

ALERTS = {
    "bad_credentials": "Vonage refused the bot's credentials (HTTP 401): logins are failing. "
    "Check VONAGE_API_KEY/VONAGE_API_SECRET or the application key.",
    "no_credit": "Vonage says the account is out of credit (HTTP 402): logins are failing.",
    "gateway_bad_credentials": "The Telegram Gateway refused TELEGRAM_GATEWAY_TOKEN: codes go "
    "by SMS instead, at the price of an SMS. Check the token.",
    "gateway_no_credit": "The Telegram Gateway account is out of funds: codes go by SMS "
    "instead, at the price of an SMS. Add funds to the Gateway account.",
    "global_limit": "LIMIT_GLOBAL_STARTS_PER_HOUR was reached: new logins are refused "
    "until the hour frees up. This can be SMS-pumping fraud.",
}


# How a login proved its number (`verified_users.channel`), as a user or an admin reads it.
METHODS = {
    "sms": "an SMS code",
    "voice": "a code by voice call",
    "telegram_gateway": "a code in Telegram",
    "telegram_contact": "your own Telegram contact",
}


def method(value: str | None) -> str:
    """How a login proved its number, in words; logins from before it was recorded: a code."""
    return METHODS.get(value or "", "a code")


def tries(n: int) -> str:
    """`1 try`, `2 tries`, ..."""
    return TRIES.get(n, f"{n} tries")


def hhmm(moment: datetime) -> str:
    """A time of day for people, in UTC, with the date when it is not today."""
    moment = moment.astimezone(UTC)
    if moment.date() == datetime.now(UTC).date():
        return moment.strftime("%H:%M:%S")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


RESEND_HINT = "No code? {when}you can ask for a new one{call} with the buttons below."
RESEND_HINT_WHEN = "In {seconds} s "
RESEND_HINT_CALL = ", or for a call"
RESEND_BUTTON = "Send a new code"
CALL_BUTTON = "Call me instead"
SMS_BUTTON = "Send by SMS instead"
RESEND_HINT_SMS = ", or for an SMS"
RESEND_TOO_SOON = "You can ask for a new code in {seconds} s."
RESENT = "A new code is on its way to {number}; the earlier one no longer works."
CALLING = "You will get a call with your code shortly."
NO_CALL = "A call is not available for this code. Use \u201cSend a new code\u201d instead."
CODE_NOT_RUNNING = "That code is no longer waiting. Send /login to start again."

PRIVACY = (
    "What I store, and why:\n"
    "\u2022 While you log in: your chat id, the number you gave, and Vonage's id for the code "
    "request, until the login ends or the code expires.\n"
    "\u2022 Once you are logged in: your chat and user id, your Telegram name and username, "
    "your verified number and when it was verified, until you /logout or /forget.\n"
    "\u2022 For the admins' audit trail: what happened when (code sent, wrong code, logged in, "
    "...), with the number masked (+44******123) and as a keyed hash.\n"
    "\u2022 To stop abuse of paid SMS: when this chat asked for codes, with the number only "
    "as a keyed hash, for two days (also after /forget, or it would lift the limits).\n"
    "\u2022 When you log in to a website through me: which website, and the number and name "
    "it was given, for a day.\n"
    "I never store or log the codes themselves. Vonage sends the codes; see its privacy "
    "policy for what it keeps.\n"
    "/forget erases your login and detaches this chat from everything else I keep."
)
FORGET_CONFIRM = "This erases your login and everything I store about this chat. Are you sure?"
FORGET_YES = "Yes, erase everything"
FORGET_NO = "No, keep it"
FORGOTTEN = "Done: everything I stored about this chat is erased."
FORGET_KEPT = "Nothing was erased."

NOTICE_MOVED = (
    "Your login with {number} has ended: that number was verified in another chat. "
    "Send /login to log in again."
)
NOTICE_REVOKED = (
    "Your login with {number} was ended by an administrator. Send /login to log in again."
)

USER_USAGE = "Usage: /user <number with + | chat id | @username>"
REVOKE_USAGE = "Usage: /revoke <number with + | chat id>"
USER_NOT_FOUND = "No login and no history for {query}."
USER_REPORT_LOGIN = (
    "Logged in: {number}, chat {chat_id}, user {user_id}, {name}, since {when}, by {method}"
)
USER_REPORT_NO_LOGIN = "Not logged in."
USER_REPORT_CHATS = "Chats that used this number: {chats}"
USER_REPORT_EVENTS = "Last events of chat {chat_id}:"
USER_REPORT_NO_EVENTS = "No events."
REVOKE_CONFIRM = (
    "End the login of {number} (chat {chat_id})? The user is told on their next message."
)
REVOKE_YES = "Yes, revoke"
REVOKE_NO = "No"
REVOKED = "Revoked: {number} (chat {chat_id}) is logged out."
REVOKE_KEPT = "Nothing was revoked."
REVOKE_EXPIRED = (
    "Nothing was revoked: this confirmation is more than {minutes} minutes old. Send /revoke again."
)
REVOKE_CHANGED = (
    "Nothing was revoked: that login has changed since you were asked (it ended, or the "
    "chat logged in again). Send /revoke again to see the current one."
)
REVOKE_NOTHING = "{query} is not logged in."
STATS_USAGE = "Usage: /stats [days], days from 1 to 366"

# ---- logging in to websites (OpenID Connect) ------------------------------------------------
# In Telegram, after /start <token> from a website's login page.
WEB_CONFIRM = "{client} ({host}) asks to log you in as {number}. Tap the number shown on that page:"
WEB_NOT_ME_BUTTON = "Not me"
WEB_LOGIN_FIRST = "{client} asks to log you in with your phone number. First, prove it is yours."
WEB_APPROVED = "Done: you are logged in to {client}. Go back to the page to continue."
WEB_WRONG_NUMBER = (
    "That is not the number shown on the page, so I refused the login to {client}. "
    "If it was you, start again on the website."
)
WEB_NOT_ME = "OK: I refused the login to {client}. Nobody was logged in."
WEB_NOT_YOURS = "This button belongs to another chat."
WEB_ANSWERED = "This login request was already answered."
WEB_EXPIRED = "This login request has expired. Start again on the website."
WEB_NOT_LOGGED_IN = (
    "You are no longer logged in, so I refused the login. Start again on the website."
)
WEB_LINK_UNKNOWN = (
    "I don't know that login link. Open it again from the website's login page, or send "
    "/help to see what I can do."
)
WEB_LINK_EXPIRED = "That login link has expired. Start again on the website."
WEB_LINK_USED = (
    "That login link was already used. Each link works once: start again on the website."
)

# The login page a website sends its users to (HTML; the words only).
PAGE_TITLE = "Log in to {client}"
PAGE_INTRO = (
    "{client} ({host}) asks for your phone number. This Telegram bot proves it: no password needed."
)
PAGE_BUTTON = "Log in with Telegram"
PAGE_QR = "On a computer? Scan this code with your phone's camera to open the link in Telegram."
PAGE_QR_LABEL = "QR code of the Telegram link"
PAGE_NUMBER = "When Telegram asks, tap this number:"
PAGE_WAITING = "Waiting for your answer in Telegram. This page expires at {expires} UTC."
PAGE_EXPIRED_TITLE = "This login request has expired"
PAGE_EXPIRED = "Nobody answered in Telegram within 5 minutes."
PAGE_RESTART = "Start again"
PAGE_FINISHED_TITLE = "Already done"
PAGE_FINISHED = "This login request was already answered. Go back to the website."
PAGE_UNKNOWN_TITLE = "Unknown login request"
PAGE_UNKNOWN = (
    "This login request is unknown here, or it was opened in another browser. "
    "Go back to the website and start again."
)
PAGE_ERROR_TITLE = "This login link is not valid"
PAGE_ERRORS = {
    "unknown_client": "The website that sent you here is not registered with this bot.",
    "unregistered_redirect_uri": (
        "The website asked to return you to an address it has not registered, so you are "
        "not sent there."
    ),
}
PAGE_ERROR_HINT = "Go back to the website and try again, or tell the website's owner."
PAGE_TOO_LARGE = "The login request is too large to be read."
PAGE_STARTING = "The login service is starting. Please try again in a moment."
