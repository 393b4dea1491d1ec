"""Every sentence a user reads. Plain language; no error text, URL or code from elsewhere.

The sentences are English, the source language; `N_(...)` marks one for the catalogs
(`pybabel extract`), `bot.i18n.Texts` shows it in the chat's language with its named
placeholders filled in. A placeholder is never a sentence part in English (translations
reorder words): whole sentences only. The web login's pages (PAGE_*) are shown in a browser,
not in Telegram, and stay English.
"""

from __future__ import annotations

from bot.i18n import Plural


def N_(message: str) -> str:
    """Mark a sentence for the catalogs; it is translated where it is shown."""
    return message


def plural(singular: str, plural: str) -> Plural:
    """Mark a counted sentence (`{n}` in both forms) for the catalogs."""
    return Plural(singular, plural)


# /help: the introduction, then one line per command of bot.telegram.commands.COMMANDS that
# has a help line (admins also get theirs, in a private chat).
HELP = N_("I log you in with your phone number, no password needed.\n\n{commands}")
ADMIN_HELP = N_("\n\nAdmin: {commands}")
HELP_LINE = "{usage} - {help}"
HELP_LOGIN = N_("prove your number with a one-time code sent by SMS (or a call)")
HELP_WHOAMI = N_("see whether you are logged in, and with which number")
HELP_LOGOUT = N_("log out")
HELP_CANCEL = N_("stop a login in progress")
HELP_PRIVACY = N_("what I store and why")
HELP_FORGET = N_("erase everything I store about this chat")
HELP_HELP = N_("this message")
HELP_LANGUAGE = N_("choose the language I speak, and the one of your code's SMS and call")
HELP_USERS = N_("the verified users")
# The command menu (setMyCommands).
MENU_LOGIN = N_("Log in with your phone number")
MENU_WHOAMI = N_("Am I logged in, and with which number?")
MENU_LOGOUT = N_("Log out")
MENU_CANCEL = N_("Stop a login in progress")
MENU_HELP = N_("What this bot does")
MENU_LANGUAGE = N_("Choose your language")

ASK_NUMBER = N_(
    "Send me your phone number with its country code, such as +44 7400 123123, "
    "or tap the button below to share the number of this Telegram account."
)
ASK_NUMBER_LOGGED_IN = N_(
    "You are logged in as {number}. To change it, send another number (with its country "
    "code) or tap the button below; /cancel keeps things as they are."
)
RESTARTED = N_("Starting over: the earlier code will no longer work.")
SHARE_CONTACT_BUTTON = N_("Share my phone number")

NOT_A_NUMBER = N_(
    "That does not look like a valid phone number. Send it with the country code, "
    "such as +44 7400 123123 or 0044 7400 123123, or /cancel."
)
NOT_YOUR_CONTACT = N_(
    "Please share your own number with the button below (or type it); "
    "I can only send a code to the number of the person logging in."
)
WAITING_FOR_NUMBER = N_("I am waiting for your phone number (or /cancel to stop).")

CODE_SENT = N_(
    "A {length}-digit code is on its way to {number} {how}. Send me the code here. "
    "It expires at {expires} UTC."
)
# The code-sent (or already-sent) message, with the hint about the buttons under it.
CODE_SENT_WITH_HINT = "{sent}\n\n{hint}"
# How the code travels, by the channels it goes by from now (VERIFY_WORKFLOW).
CHANNELS = {
    ("sms", "voice"): N_("by SMS; if it does not arrive, you will get a call"),
    ("voice", "sms"): N_("by a phone call; if you miss it, you will get an SMS"),
    ("sms",): N_("by SMS"),
    ("voice",): N_("by a phone call"),
    ("telegram", "sms", "voice"): N_(
        "as a Telegram message from \u201cVerification Codes\u201d; if it does not come, you "
        "will get an SMS, then a call"
    ),
    ("telegram", "voice", "sms"): N_(
        "as a Telegram message from \u201cVerification Codes\u201d; if it does not come, you "
        "will get a call, then an SMS"
    ),
    ("telegram", "sms"): N_(
        "as a Telegram message from \u201cVerification Codes\u201d; if it does not come, you "
        "will get an SMS"
    ),
    ("telegram", "voice"): N_(
        "as a Telegram message from \u201cVerification Codes\u201d; if it does not come, you "
        "will get a call"
    ),
}
# After "Send by SMS instead", or when the Telegram code was not used in time.
SMS_INSTEAD = N_(
    "A new code is on its way to {number} {how}; the Telegram code no longer works. "
    "Send me the new code here."
)
GATEWAY_TIMED_OUT = N_(
    "The Telegram code was not used in time, so a new code is on its way to {number} {how}; "
    "the Telegram code no longer works. Send me the new code here."
)
CODE_ALREADY_SENT = N_(
    "A code was already sent to {number} and is still valid until {expires} UTC. "
    "Send me that code here."
)
ALREADY_YOURS = N_("You are already logged in as {number}. Nothing changed.")
REFUSED_COUNTRY = N_(
    "Sorry, I cannot send codes to numbers in that country. Send another number or /cancel."
)
REFUSED_PREFIX = N_("Sorry, I cannot send codes to that number. Send another number or /cancel.")
LIMITED = N_(
    "Too many codes were asked for this chat or this number. You can try again after "
    "{when} UTC. Send another number or /cancel."
)
# {when} when the limit frees up is unknown.
LATER = N_("later")
LIMITED_GLOBAL = N_(
    "I am receiving too many login requests right now. Please try again after {when} UTC."
)
INVALID_NUMBER = N_(
    "I could not send a code to that number. Check it and send it again with its country code, "
    "or /cancel."
)
NUMBER_BUSY = N_(
    "Another login is waiting for a code sent to that number. Try again in a few minutes, "
    "or send another number."
)
BUSY = N_("Too many codes are being sent right now. Please try again in a minute.")
UNAVAILABLE = N_("Sorry, I cannot send codes right now. Please try again in a few minutes.")
RESEND_FAILED = N_("The earlier code no longer works: send your number again to get a new one.")

WAITING_FOR_CODE = N_(
    "I am waiting for the {length}-digit code sent to {number} (or /cancel to stop)."
)
NOT_A_CODE = N_("The code is {length} digits, such as 123456. Please send just the digits.")
WRONG_CODE = plural(
    "That code is not right. {n} try left.", "That code is not right. {n} tries left."
)
TOO_MANY_WRONG = N_(
    "Too many wrong codes, so that code no longer works. Send /login to get a new one."
)
CODE_EXPIRED = N_("That code has expired. Send /login to get a new one.")
CHECK_UNAVAILABLE = N_("Sorry, I could not check the code just now. Please send it again.")
VERIFIED = N_("You are logged in as {number}.")

CANCELLED = N_("Login cancelled.")
NOTHING_TO_CANCEL = N_("There is no login in progress.")
LOGGED_OUT = N_("You are logged out. {number} is no longer linked to this chat.")
NOT_LOGGED_IN = N_("You are not logged in. Send /login to start.")
WHOAMI = N_("You are logged in as {number} (since {since} UTC, proven by {method}).")
WHOAMI_FLOW = N_("You are not logged in yet; a login is in progress. /cancel stops it.")

OUTSIDE_FLOW = N_("Send /login to log in with your phone number, or /help to see what I can do.")
OUTSIDE_FLOW_LOGGED_IN = N_(
    "You are logged in as {number}. /whoami shows your login, /logout ends it."
)
EXPIRED_NOTICE = N_("Your code expired before it was used. Send /login to get a new one.")
PRIVATE_ONLY = N_("For your privacy, logging in happens in a private chat with me: {link}")

USERS_EMPTY = N_("No verified users yet.")
USERS_HEADER = N_("Verified users ({total}), page {page} of {pages}:")
USERS_LINE = N_("{number} · chat {chat_id} · {name} · {when}")
USERS_PREVIOUS = N_("« Previous")
USERS_NEXT = N_("Next »")

APOLOGY = N_("Sorry, something went wrong on my side. Please try again in a moment.")
NO_SENDER = N_(
    "I cannot tell who sent that, so I cannot act on it. Please write to me from your own "
    "Telegram account."
)

ALERTS = {
    "bad_credentials": N_(
        "Vonage refused the bot's credentials (HTTP 401): logins are failing. "
        "Check VONAGE_API_KEY/VONAGE_API_SECRET or the application key."
    ),
    "no_credit": N_("Vonage says the account is out of credit (HTTP 402): logins are failing."),
    "gateway_bad_credentials": N_(
        "The Telegram Gateway refused TELEGRAM_GATEWAY_TOKEN: codes go "
        "by SMS instead, at the price of an SMS. Check the token."
    ),
    "gateway_no_credit": N_(
        "The Telegram Gateway account is out of funds: codes go by SMS "
        "instead, at the price of an SMS. Add funds to the Gateway account."
    ),
    "global_limit": N_(
        "LIMIT_GLOBAL_STARTS_PER_HOUR was reached: new logins are refused "
        "until the hour frees up. This can be SMS-pumping fraud."
    ),
}


# How a login proved its number (`verified_users.channel`), as a user or an admin reads it.
METHODS = {
    "sms": N_("an SMS code"),
    "voice": N_("a code by voice call"),
    "telegram_gateway": N_("a code in Telegram"),
    "telegram_contact": N_("your own Telegram contact"),
}
# Logins from before the method was recorded.
METHOD_UNKNOWN = N_("a code")


def method(value: str | None) -> str:
    """How a login proved its number (a sentence to translate)."""
    return METHODS.get(value or "", METHOD_UNKNOWN)


# Under the code-sent message: when a new code (or a call) may be asked for.
RESEND_HINT_NOW = N_("No code? You can ask for a new one with the buttons below.")
RESEND_HINT_NOW_CALL = N_(
    "No code? You can ask for a new one, or for a call with the buttons below."
)
RESEND_HINT_LATER = N_("No code? In {seconds} s you can ask for a new one with the buttons below.")
RESEND_HINT_LATER_CALL = N_(
    "No code? In {seconds} s you can ask for a new one, or for a call with the buttons below."
)
# While the code is a Telegram one (the Gateway), an SMS instead of a call.
RESEND_HINT_NOW_SMS = N_(
    "No code? You can ask for a new one, or for an SMS with the buttons below."
)
RESEND_HINT_LATER_SMS = N_(
    "No code? In {seconds} s you can ask for a new one, or for an SMS with the buttons below."
)
RESEND_BUTTON = N_("Send a new code")
CALL_BUTTON = N_("Call me instead")
SMS_BUTTON = N_("Send by SMS instead")
RESEND_TOO_SOON = N_("You can ask for a new code in {seconds} s.")
RESENT = N_("A new code is on its way to {number}; the earlier one no longer works.")
CALLING = N_("You will get a call with your code shortly.")
NO_CALL = N_("A call is not available for this code. Use \u201cSend a new code\u201d instead.")
CODE_NOT_RUNNING = N_("That code is no longer waiting. Send /login to start again.")

PRIVACY = N_(
    "What I store, and why:\n"
    "\u2022 While you log in: your chat id, the number you gave, and Vonage's id for the code "
    "request, until the login ends or the code expires.\n"
    "\u2022 Once you are logged in: your chat and user id, your Telegram name and username, "
    "your verified number and when it was verified, until you /logout or /forget.\n"
    "\u2022 For the admins' audit trail: what happened when (code sent, wrong code, logged in, "
    "...), with the number masked (+44******123) and as a keyed hash, for {audit_days} days.\n"
    "\u2022 To stop abuse of paid SMS: when this chat asked for codes, with the number only "
    "as a keyed hash, for two days (also after /forget, or it would lift the limits).\n"
    "\u2022 When you log in to a website through me: which website, and the number and name "
    "it was given, for a day.\n"
    "I never store or log the codes themselves. Vonage sends the codes; see its privacy "
    "policy for what it keeps.\n"
    "/forget erases your login and detaches this chat from everything else I keep."
)
FORGET_CONFIRM = N_("This erases your login and everything I store about this chat. Are you sure?")
FORGET_YES = N_("Yes, erase everything")
FORGET_NO = N_("No, keep it")
FORGOTTEN = N_("Done: everything I stored about this chat is erased.")
FORGET_KEPT = N_("Nothing was erased.")

# /language: one button per language, each in its own name (bot.i18n.LANGUAGES).
LANGUAGE_CHOOSE = N_("I speak English with you. Choose another language:")
LANGUAGE_CHOSEN = N_(
    "From now on I speak English with you, and your login codes come in English too."
)

NOTICE_MOVED = N_(
    "Your login with {number} has ended: that number was verified in another chat. "
    "Send /login to log in again."
)
NOTICE_REVOKED = N_(
    "Your login with {number} was ended by an administrator. Send /login to log in again."
)

USER_USAGE = N_("Usage: /user <number with + | chat id | @username>")
REVOKE_USAGE = N_("Usage: /revoke <number with + | chat id>")
USER_NOT_FOUND = N_("No login and no history for {query}.")
USER_REPORT_LOGIN = N_(
    "Logged in: {number}, chat {chat_id}, user {user_id}, {name}, since {when}, by {method}"
)
USER_REPORT_NO_LOGIN = N_("Not logged in.")
USER_REPORT_CHATS = N_("Chats that used this number: {chats}")
USER_REPORT_EVENTS = N_("Last events of chat {chat_id}:")
USER_REPORT_NO_EVENTS = N_("No events.")
REVOKE_CONFIRM = N_(
    "End the login of {number} (chat {chat_id})? The user is told on their next message."
)
REVOKE_YES = N_("Yes, revoke")
REVOKE_NO = N_("No")
REVOKED = N_("Revoked: {number} (chat {chat_id}) is logged out.")
REVOKE_KEPT = N_("Nothing was revoked.")
REVOKE_EXPIRED = N_(
    "Nothing was revoked: this confirmation is more than {minutes} minutes old. Send /revoke again."
)
REVOKE_CHANGED = N_(
    "Nothing was revoked: that login has changed since you were asked (it ended, or the "
    "chat logged in again). Send /revoke again to see the current one."
)
REVOKE_NOTHING = N_("{query} is not logged in.")
STATS_USAGE = N_("Usage: /stats [days], days from 1 to 366")
# The answer to /stats (bot.admin.reports.stats_text). Region and channel keys, failure and
# limit names, currencies and setting names stay as they are: an operator greps for them.
STATS_HEADER = N_(
    "Last {days} day(s) since {since} UTC: {starts} started, {verified} verified, "
    "conversion {conversion}"
)
STATS_PER_DAY = N_("Per day:")
STATS_PER_REGION = N_("Per region:")
STATS_ROW = N_("{label}: {starts} started, {verified} verified, {conversion}")
STATS_ROW_SPEND = N_(
    "{label}: {starts} started, {verified} verified, {conversion}, spend {currency} {spend}"
)
STATS_ROW_SPEND_UNKNOWN = N_(
    "{label}: {starts} started, {verified} verified, {conversion}, spend {currency} unknown"
)
STATS_SUSPICIOUS = N_("<- LOW CONVERSION: possible SMS pumping")
STATS_NOTHING = N_("(nothing)")
STATS_NONE = N_("none")
STATS_FAILURES = N_("Failures: {counts}")
STATS_LIMITS = N_("Limits tripped: {counts}")
STATS_WEB_LOGINS = N_("Web logins per client: {clients}")
STATS_SPEND_UNPRICED = N_("Paid sends: {sends}; spend unknown (set {settings})")
STATS_SPEND_NO_PRICE = N_("Paid sends: {sends}; spend unknown (no price for {channels})")
STATS_SPEND = N_(
    "Paid sends: {sends}; estimated spend {currency} {spend}, "
    "{currency} {per_login} per verified login"
)

# ---- logging in to websites (OpenID Connect) ------------------------------------------------
# In Telegram, after /start <token> from a website's login page.
WEB_CONFIRM = N_(
    "{client} ({host}) asks to log you in as {number}. Tap the number shown on that page:"
)
WEB_NOT_ME_BUTTON = N_("Not me")
WEB_LOGIN_FIRST = N_(
    "{client} asks to log you in with your phone number. First, prove it is yours."
)
WEB_APPROVED = N_("Done: you are logged in to {client}. Go back to the page to continue.")
WEB_WRONG_NUMBER = N_(
    "That is not the number shown on the page, so I refused the login to {client}. "
    "If it was you, start again on the website."
)
WEB_NOT_ME = N_("OK: I refused the login to {client}. Nobody was logged in.")
WEB_NOT_YOURS = N_("This button belongs to another chat.")
WEB_ANSWERED = N_("This login request was already answered.")
WEB_EXPIRED = N_("This login request has expired. Start again on the website.")
WEB_NOT_LOGGED_IN = N_(
    "You are no longer logged in, so I refused the login. Start again on the website."
)
WEB_LINK_UNKNOWN = N_(
    "I don't know that login link. Open it again from the website's login page, or send "
    "/help to see what I can do."
)
WEB_LINK_EXPIRED = N_("That login link has expired. Start again on the website.")
WEB_LINK_USED = N_(
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
PAGE_UNAVAILABLE_TITLE = "The login service is unavailable"
PAGE_UNAVAILABLE = "Something went wrong on our side. Please try again in a moment."
