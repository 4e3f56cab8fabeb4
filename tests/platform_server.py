"""Local HTTP servers that behave like Buttondown, listmonk and Ghost, for `digest publish` tests.

Each checks every request against what the platform's own documents require (method, path,
auth header, JSON fields and their types), answers in the documented shapes, and keeps the
drafts it holds in memory. A request that breaks a rule is answered as the platform would
(422/400) and listed in `problems`, which a test asserts is empty. Tests can inject answers
(`inject`), drop a connection (status 0), hold the answer to a create (`hold_after_create`)
after the draft was stored, so that the client can be killed in between, or store the draft
and answer 502 all the same (`fail_after_create`, or `break_after` for any request).

Written from: Buttondown's OpenAPI document (EmailInput, EmailUpdateInput, Email, EmailPage,
ErrorMessage, ValidationErrorMessage), listmonk's handlers (cmd/campaigns.go, the auth
middleware, internal/core/campaigns.go) and Ghost's Admin API documentation (posts, token
authentication, errors) and its email renderer (replacement strings).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.webserver import QuietServer


@dataclass
class Call:
    """A request as the server saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    """What the server answers: status (0 = close the connection without answering)."""

    status: int
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    hold: float = 0.0  # seconds to wait before answering (after the work is done)


@dataclass
class Injected:
    """An answer given instead of the real one to the next matching requests."""

    method: str
    path: str  # a prefix of the request path
    answer: Answer
    times: int = 1


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class FakePlatform:
    """The HTTP plumbing shared by the three fakes; subclasses implement `handle`."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.problems: list[str] = []
        self.injected: list[Injected] = []
        self.hold_after_create = 0.0
        self.fail_after_create = 0  # creates that are done, then answered with HTTP 502
        self.broken: list[Injected] = []  # requests done, then answered with HTTP 502
        self.skips: dict[int, int] = {}
        self.created = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                call = Call(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                )
                with fake._lock:
                    fake.calls.append(call)
                    answer = fake._injected(call)
                    if answer is None:
                        try:
                            answer = fake.handle(call)
                        except Exception as exc:  # a bug in the fake: make it visible
                            fake.problems.append(
                                f"fake crashed on {call.method} {call.path}: {exc!r}"
                            )
                            answer = Answer(500, {"detail": "fake crashed"})
                        answer = fake._broken(call, answer)
                if answer.hold:
                    fake.created.set()
                    time.sleep(answer.hold)
                if answer.status == 0:
                    self.close_connection = True
                    return
                raw = b"" if answer.data is None else json.dumps(answer.data).encode()
                try:
                    self.send_response(answer.status)
                    if raw:
                        self.send_header("Content-Type", "application/json")
                    for key, value in answer.headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._stopped = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakePlatform:
        self.thread.start()
        return self

    def stop(self) -> None:
        if not self._stopped:
            self._stopped = True
            self.server.shutdown()
            self.server.server_close()
            assert not self.server.errors, f"the fake platform failed: {self.server.errors[0]}"

    def inject(self, method: str, path: str, answer: Answer, times: int = 1) -> None:
        """Answer the next `times` requests of `method` on a path starting with `path` so."""
        self.injected.append(Injected(method, path, answer, times))

    def break_after(self, method: str, path: str, times: int = 1, skip: int = 0) -> None:
        """After `skip` of them, do the next `times` requests of `method` on a path starting
        with `path`, then answer HTTP 502 (a gateway that lost the platform's answer)."""
        bad = Answer(502, {"detail": "Bad gateway"}, {"Retry-After": "0"})
        self.broken.append(Injected(method, path, bad, times + skip))
        self.skips[id(self.broken[-1])] = skip

    def _broken(self, call: Call, answer: Answer) -> Answer:
        for item in self.broken:
            if item.times and item.method == call.method and call.path.startswith(item.path):
                if answer.status < 400:
                    item.times -= 1
                    if self.skips[id(item)] > 0:
                        self.skips[id(item)] -= 1
                        return answer
                    return item.answer
        return answer

    def _injected(self, call: Call) -> Answer | None:
        for item in self.injected:
            if item.times and item.method == call.method and call.path.startswith(item.path):
                item.times -= 1
                return item.answer
        return None

    def held(self, answer: Answer) -> Answer:
        """The answer to a create, held back `hold_after_create` seconds when set, or
        replaced by a 502 (the draft exists all the same) while `fail_after_create` lasts."""
        answer.hold = self.hold_after_create
        if self.fail_after_create > 0:
            self.fail_after_create -= 1
            return Answer(502, {"detail": "Bad gateway"}, {"Retry-After": "0"})
        return answer

    def handle(self, call: Call) -> Answer:  # pragma: no cover - overridden
        raise NotImplementedError

    def problem(self, text: str) -> None:
        self.problems.append(text)

    def json_body(self, call: Call) -> Any:
        if call.headers.get("content-type", "").split(";")[0] != "application/json":
            self.problem(f"{call.method} {call.path}: Content-Type is not application/json")
        try:
            return call.json
        except ValueError:
            self.problem(f"{call.method} {call.path}: body is not JSON")
            return None


# ---------------------------------------------------------------- Buttondown

# Field names of EmailInput / EmailUpdateInput in Buttondown's OpenAPI document.
BD_INPUT = {
    "attachments", "publish_date", "subject", "slug", "description", "canonical_url", "image",
    "body", "archival_mode", "email_type", "status", "metadata", "secondary_id", "filters",
    "template", "commenting_mode", "related_email_ids", "featured",
    "should_trigger_pay_per_email_billing",
}  # fmt: skip
BD_UPDATE = BD_INPUT | {"suppression_reason"}
BD_STATUSES = {
    "draft", "managed_by_rss", "about_to_send", "scheduled", "in_flight", "paused", "deleted",
    "errored", "sent", "imported", "throttled", "resending", "transactional", "suppressed",
}  # fmt: skip
BD_STRINGS = {"subject", "body", "description", "canonical_url", "image"}


class ButtondownServer(FakePlatform):
    """Buttondown's /v1/emails."""

    def __init__(self, key: str = "bd-test-key") -> None:
        super().__init__()
        self.key = key
        self.emails: dict[str, dict[str, Any]] = {}

    def _validation(self, loc: str, msg: str) -> Answer:
        self.problem(f"{loc}: {msg}")
        return Answer(422, {"detail": [{"type": "value_error", "loc": ["body", loc], "msg": msg}]})

    def _check_fields(self, data: Any, allowed: set[str]) -> Answer | None:
        if not isinstance(data, dict):
            return self._validation("body", "expected an object")
        for name, value in data.items():
            if name not in allowed:
                return self._validation(name, "extra fields not permitted")
            if name in BD_STRINGS and not isinstance(value, str):
                return self._validation(name, "expected a string")
        if "metadata" in data and not isinstance(data["metadata"], dict):
            return self._validation("metadata", "expected an object")
        if "status" in data and data["status"] not in BD_STATUSES:
            return self._validation("status", f"not a status: {data['status']!r}")
        secondary = data.get("secondary_id")
        if secondary is not None and not (
            isinstance(secondary, int) and 1 <= secondary <= 1_000_000_000
        ):
            return self._validation("secondary_id", "expected an integer 1..1000000000")
        subject = data.get("subject")
        if isinstance(subject, str) and len(subject) > 2000:
            return self._validation("subject", "at most 2000 characters")
        if data.get("publish_date") is not None:
            try:
                dt.datetime.fromisoformat(str(data["publish_date"]).replace("Z", "+00:00"))
            except ValueError:
                return self._validation("publish_date", "expected a date-time")
        return None

    def _email(self, item: dict[str, Any]) -> dict[str, Any]:
        return dict(item)

    def handle(self, call: Call) -> Answer:
        if call.headers.get("authorization") != f"Token {self.key}":
            return Answer(401, {"detail": "Invalid token.", "code": "invalid_token"})
        if call.path == "/v1/emails" and call.method == "GET":
            for name in call.query:
                if name not in ("status", "subject", "ordering", "page", "ids"):
                    self.problem(f"GET /v1/emails: unexpected parameter {name!r}")
            if any(s not in BD_STATUSES for s in call.query.get("status", [])):
                return self._validation("status", "not a status")
            results = list(self.emails.values())
            if call.query.get("ordering") == ["-creation_date"]:
                results.reverse()
            if "subject" in call.query:
                results = [e for e in results if call.query["subject"][0] in e["subject"]]
            if "status" in call.query:
                results = [e for e in results if e["status"] in call.query["status"]]
            return Answer(
                200, {"results": results, "next": None, "previous": None, "count": len(results)}
            )
        if call.path == "/v1/emails" and call.method == "POST":
            data = self.json_body(call)
            bad = self._check_fields(data, BD_INPUT)
            if bad:
                return bad
            if "subject" not in data:
                return self._validation("subject", "field required")
            status = data.get("status", "about_to_send")
            if status != "draft":
                self.problem(f"POST /v1/emails with status {status!r}: digest must create drafts")
            when = now_iso()
            email_id = "em_" + "".join(
                secrets.choice("0123456789abcdefghjkmnpqrstvwxyz") for _ in range(26)
            )
            email = {
                "id": email_id,
                "creation_date": when,
                "modification_date": when,
                "absolute_url": f"https://buttondown.com/test/archive/{email_id}/",
                "body": data.get("body", ""),
                "canonical_url": data.get("canonical_url", ""),
                "commenting_mode": "enabled",
                "description": data.get("description", ""),
                "archival_mode": "enabled",
                "featured": False,
                "filters": {"filters": [], "groups": [], "predicate": "and"},
                "image": "",
                "metadata": data.get("metadata", {}),
                "publish_date": data.get("publish_date"),
                "related_email_ids": [],
                "secondary_id": data.get("secondary_id"),
                "should_trigger_pay_per_email_billing": False,
                "source": "api",
                "status": status,
                "subject": data["subject"],
            }
            self.emails[email_id] = email
            return self.held(Answer(201, self._email(email)))
        match = re.fullmatch(r"/v1/emails/([^/]+)", call.path)
        if match and call.method in ("PATCH", "GET"):
            email = self.emails.get(match.group(1))
            if email is None:
                return Answer(404, {"detail": "Not found.", "code": "not_found"})
            if call.method == "GET":
                return Answer(200, self._email(email))
            data = self.json_body(call)
            bad = self._check_fields(data, BD_UPDATE)
            if bad:
                return bad
            status = data.get("status")
            if status == "about_to_send" and (
                call.headers.get("x-buttondown-live-dangerously") != "true"
            ):
                return Answer(
                    400,
                    {
                        "code": "sending_requires_confirmation",
                        "detail": "Sending an email through the API needs the "
                        "X-Buttondown-Live-Dangerously header.",
                    },
                )
            if status == "scheduled" and not data.get("publish_date"):
                return Answer(
                    400, {"code": "publish_date_missing", "detail": "Scheduling needs a date."}
                )
            email.update({k: v for k, v in data.items()})
            if status == "about_to_send":
                email["status"] = "sent"
            email["modification_date"] = now_iso()
            return Answer(200, self._email(email))
        return Answer(404, {"detail": "Not found."})


# ---------------------------------------------------------------- listmonk

# JSON fields of campReq (models.Campaign plus lists, media, subscribers) in listmonk.
LM_FIELDS = {
    "id", "created_at", "updated_at", "uuid", "type", "name", "subject", "from_email", "body",
    "body_source", "altbody", "send_at", "status", "content_type", "tags", "headers",
    "attribs", "template_id", "messenger", "archive", "archive_slug", "archive_template_id",
    "archive_meta", "lists", "media", "subscribers", "send_later",
}  # fmt: skip
LM_CONTENT_TYPES = {"richtext", "html", "plain", "markdown", "visual"}
# Go template actions listmonk's campaign templates understand (a subset is enough here).
LM_TEMPLATE = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
LM_KNOWN = re.compile(
    r"^\s*(UnsubscribeURL|OptinURL|MessageURL|ManageURL|TrackView|"
    r"Subscriber\.\w+|Campaign\.\w+|L\.T \"[\w.]+\")\s*$"
)


class ListmonkServer(FakePlatform):
    """listmonk's /api/campaigns."""

    def __init__(self, user: str = "api-digest", token: str = "lm-test-token") -> None:
        super().__init__()
        self.user = user
        self.token = token
        self.lists = {3: "Weekly readers", 4: "Friends"}
        self.templates = {1: "Default", 5: "Newsletter"}
        self.campaigns: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def _bad(self, message: str, expected: bool = False) -> Answer:
        if not expected:
            self.problem(message)
        return Answer(400, {"message": message})

    def _auth(self, call: Call) -> bool:
        header = call.headers.get("authorization", "")
        if header.startswith("token "):
            return header == f"token {self.user}:{self.token}"
        if header.startswith("Basic "):
            raw = base64.b64decode(header[6:]).decode()
            return raw == f"{self.user}:{self.token}"
        return False

    def _validate(self, data: dict[str, Any]) -> Answer | None:
        for name in data:
            if name not in LM_FIELDS:
                self.problem(f"listmonk campaign: unknown field {name!r}")
        if not isinstance(data.get("name"), str) or not 1 <= len(data["name"]) <= 2000:
            return self._bad("Invalid length for name.")
        if not isinstance(data.get("subject"), str) or not 1 <= len(data["subject"]) <= 5000:
            return self._bad("Invalid length for subject.")
        if data.get("content_type") not in LM_CONTENT_TYPES:
            self.problem(f"content_type {data.get('content_type')!r} falls back to richtext")
        lists = data.get("lists")
        if not isinstance(lists, list) or not lists or not all(isinstance(i, int) for i in lists):
            return self._bad("Invalid list IDs.")
        if any(i not in self.lists for i in lists):
            return self._bad(
                "There are no subscribers in the selected lists to create the campaign.",
                expected=True,
            )
        template = data.get("template_id")
        if template is not None and template not in self.templates:
            return self._bad("Template not found", expected=True)
        for field_name in ("body", "altbody"):
            for action in LM_TEMPLATE.findall(str(data.get(field_name) or "")):
                if not LM_KNOWN.match(action):
                    return self._bad(
                        f'Error compiling template: template: content:1: function "{action.strip()}" '
                        "not defined",
                        expected=True,
                    )
        if data.get("send_at"):
            when = dt.datetime.fromisoformat(str(data["send_at"]).replace("Z", "+00:00"))
            if when < dt.datetime.now(dt.UTC):
                return self._bad("send_at date should be in the future.", expected=True)
        if not isinstance(data.get("tags", []), list):
            return self._bad("tags must be a list")
        return None

    def _out(self, campaign: dict[str, Any]) -> dict[str, Any]:
        out = dict(campaign)
        out["lists"] = [{"id": i, "name": self.lists[i]} for i in campaign["lists"]]
        return out

    def handle(self, call: Call) -> Answer:
        if not self._auth(call):
            return Answer(403, {"message": "invalid API credentials"})
        if call.path == "/api/campaigns" and call.method == "GET":
            tags = call.query.get("tag", [])
            found = [c for c in self.campaigns.values() if all(t in c["tags"] for t in tags)]
            if not found:
                return Answer(
                    200,
                    {"data": {"query": "", "results": [], "total": 0, "per_page": 0, "page": 0}},
                )
            return Answer(
                200,
                {
                    "data": {
                        "query": "",
                        "results": [self._out(c) for c in found],
                        "total": len(found),
                        "per_page": len(found),
                        "page": 1,
                    }
                },
            )
        if call.path == "/api/campaigns" and call.method == "POST":
            data = self.json_body(call)
            if not isinstance(data, dict):
                return self._bad("bad request body")
            bad = self._validate(data)
            if bad:
                return bad
            campaign_id = next(self._ids)
            when = now_iso()
            campaign = {
                "id": campaign_id,
                "uuid": secrets.token_hex(16),
                "created_at": when,
                "updated_at": when,
                "type": data.get("type") or "regular",
                "name": data["name"],
                "subject": data["subject"],
                "from_email": data.get("from_email") or "listmonk <noreply@listmonk.example>",
                "body": data.get("body", ""),
                "altbody": data.get("altbody"),
                "send_at": data.get("send_at"),
                "status": "draft",
                "content_type": data.get("content_type") or "richtext",
                "tags": data.get("tags") or [],
                "template_id": data.get("template_id") or 1,
                "messenger": data.get("messenger") or "email",
                "headers": [],
                "lists": data["lists"],
                "archive": bool(data.get("archive")),
            }
            self.campaigns[campaign_id] = campaign
            return self.held(Answer(200, {"data": self._out(campaign)}))
        match = re.fullmatch(r"/api/campaigns/(\d+)(/status)?", call.path)
        if match and call.method in ("PUT", "GET"):
            campaign = self.campaigns.get(int(match.group(1)))
            if campaign is None:
                return self._bad("Campaign not found", expected=True)
            if call.method == "GET":
                return Answer(200, {"data": self._out(campaign)})
            data = self.json_body(call)
            if not isinstance(data, dict):
                return self._bad("bad request body")
            if match.group(2):
                return self._status(campaign, str(data.get("status")))
            if campaign["status"] not in ("draft", "paused", "scheduled"):
                return self._bad("Cannot update a running or a finished campaign.", expected=True)
            merged = {**campaign, **data}
            bad = self._validate(merged)
            if bad:
                return bad
            campaign.update({k: v for k, v in data.items() if k != "send_later"})
            campaign["updated_at"] = now_iso()
            return Answer(200, {"data": self._out(campaign)})
        return Answer(404, {"message": "Not found"})

    def _status(self, campaign: dict[str, Any], status: str) -> Answer:
        current = campaign["status"]
        if status == "scheduled":
            if current not in ("draft", "paused"):
                return self._bad("Only draft or paused campaigns can be scheduled.", expected=True)
            if not campaign.get("send_at"):
                return self._bad("Campaign needs a date to be scheduled.", expected=True)
        elif status == "running":
            if current not in ("paused", "draft"):
                return self._bad("Only paused and draft campaigns can be started.", expected=True)
        else:
            return self._bad(f"unexpected status {status!r}")
        campaign["status"] = status
        return Answer(200, {"data": self._out(campaign)})


# ---------------------------------------------------------------- Ghost

GHOST_POST_FIELDS = {
    "title", "html", "lexical", "mobiledoc", "status", "tags", "authors", "custom_excerpt",
    "email_subject", "updated_at", "published_at", "slug", "feature_image", "visibility",
    "featured", "meta_title", "meta_description",
}  # fmt: skip


def _b64decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


class GhostServer(FakePlatform):
    """Ghost's Admin API: /ghost/api/admin/posts/."""

    def __init__(self) -> None:
        super().__init__()
        self.key_id = "66a1b2c3d4e5f60718293a4b"
        self.secret = secrets.token_hex(32)
        self.newsletters = {"weekly"}
        self.posts: dict[str, dict[str, Any]] = {}
        self._tick = itertools.count(1)

    @property
    def admin_key(self) -> str:
        return f"{self.key_id}:{self.secret}"

    def _error(self, status: int, kind: str, message: str, context: str = "") -> Answer:
        return Answer(
            status,
            {"errors": [{"message": message, "context": context or None, "type": kind}]},
        )

    def _token_ok(self, call: Call) -> bool:
        header = call.headers.get("authorization", "")
        if not header.startswith("Ghost "):
            return False
        try:
            head64, body64, sig64 = header[6:].split(".")
            head = json.loads(_b64decode(head64))
            body = json.loads(_b64decode(body64))
        except ValueError:
            return False
        expected = hmac.new(
            bytes.fromhex(self.secret), f"{head64}.{body64}".encode(), hashlib.sha256
        ).digest()
        now = time.time()
        checks = {
            "signature": hmac.compare_digest(expected, _b64decode(sig64)),
            "alg": head.get("alg") == "HS256",
            "kid": head.get("kid") == self.key_id,
            "aud": body.get("aud") == "/admin/",
            "lifetime": 0 < body.get("exp", 0) - body.get("iat", 0) <= 300,
            "expiry": body.get("exp", 0) > now and body.get("iat", now + 99) <= now + 5,
        }
        failed = [name for name, ok in checks.items() if not ok]
        if failed and checks["signature"]:  # signed with the right key, yet malformed
            self.problem(f"Ghost token refused: {failed}")
        return not failed

    def _stamp(self) -> str:
        base = dt.datetime.now(dt.UTC) + dt.timedelta(milliseconds=next(self._tick))
        return base.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def _check_post(self, post: Any, call: Call) -> Answer | None:
        if not isinstance(post, dict):
            return self._error(422, "ValidationError", "Validation error, cannot save post.")
        for name in post:
            if name not in GHOST_POST_FIELDS:
                self.problem(f"Ghost post: unexpected field {name!r}")
        if "html" in post and call.query.get("source") != ["html"]:
            self.problem("html sent without ?source=html: Ghost would ignore it")
        if len(str(post.get("custom_excerpt") or "")) > 300:
            return self._error(
                422, "ValidationError", "Validation error, cannot save post.",
                "Value in [posts.custom_excerpt] exceeds maximum length of 300 characters.",
            )  # fmt: skip
        for tag in post.get("tags") or []:
            if not (isinstance(tag, dict) and isinstance(tag.get("name"), str)):
                return self._error(422, "ValidationError", "Validation error, cannot save tag.")
        return None

    def _slug(self, name: str) -> str:
        return ("hash-" + name[1:]) if name.startswith("#") else name.lower().replace(" ", "-")

    def _apply(self, stored: dict[str, Any], post: dict[str, Any]) -> None:
        for name in ("title", "html", "custom_excerpt", "email_subject", "published_at"):
            if name in post:
                stored[name] = post[name]
        if "tags" in post:
            stored["tags"] = [
                {"name": t["name"], "slug": self._slug(t["name"]),
                 "visibility": "internal" if t["name"].startswith("#") else "public"}
                for t in post["tags"]
            ]  # fmt: skip
        stored["updated_at"] = self._stamp()

    def handle(self, call: Call) -> Answer:
        if not call.path.startswith("/ghost/api/admin/"):
            return self._error(404, "NotFoundError", "Resource not found")
        if "accept-version" not in call.headers:
            self.problem("Ghost Admin API request without Accept-Version")
        if not self._token_ok(call):
            return self._error(401, "UnauthorizedError", "Invalid token")
        if call.path == "/ghost/api/admin/posts/" and call.method == "GET":
            posts = list(self.posts.values())
            for part in call.query.get("filter", []):
                match = re.fullmatch(r"tags?:([\w-]+)", part)
                if not match:
                    self.problem(f"unsupported filter {part!r}")
                    continue
                posts = [p for p in posts if match.group(1) in [t["slug"] for t in p["tags"]]]
            pagination = {"page": 1, "limit": "all", "pages": 1, "total": len(posts)}
            return Answer(200, {"posts": posts, "meta": {"pagination": pagination}})
        if call.path == "/ghost/api/admin/posts/" and call.method == "POST":
            data = self.json_body(call)
            posts = data.get("posts") if isinstance(data, dict) else None
            if not isinstance(posts, list) or len(posts) != 1:
                return self._error(422, "ValidationError", "Validation (posts) failed")
            bad = self._check_post(posts[0], call)
            if bad:
                return bad
            if not posts[0].get("title"):
                return self._error(
                    422, "ValidationError", "Validation error, cannot save post.",
                    "Value in [posts.title] cannot be blank.",
                )  # fmt: skip
            if posts[0].get("status", "draft") != "draft":
                self.problem("Ghost post created with a status other than draft")
            post_id = secrets.token_hex(12)
            uuid = secrets.token_hex(16)
            stored: dict[str, Any] = {
                "id": post_id,
                "uuid": uuid,
                "slug": re.sub(r"[^a-z0-9]+", "-", posts[0]["title"].lower()).strip("-"),
                "status": "draft",
                "created_at": self._stamp(),
                "url": f"{self.url}/p/{uuid}/",
                "tags": [],
                "email": None,
                "newsletter": None,
            }
            self._apply(stored, posts[0])
            self.posts[post_id] = stored
            return self.held(Answer(201, {"posts": [stored]}))
        match = re.fullmatch(r"/ghost/api/admin/posts/([0-9a-f]{24})/", call.path)
        if match:
            stored = self.posts.get(match.group(1))
            if stored is None:
                return self._error(404, "NotFoundError", "Post not found.")
            if call.method == "GET":
                return Answer(200, {"posts": [stored]})
            if call.method != "PUT":
                return self._error(404, "NotFoundError", "Resource not found")
            data = self.json_body(call)
            posts = data.get("posts") if isinstance(data, dict) else None
            if not isinstance(posts, list) or len(posts) != 1:
                return self._error(422, "ValidationError", "Validation (posts) failed")
            post = posts[0]
            bad = self._check_post(post, call)
            if bad:
                return bad
            if post.get("updated_at") != stored["updated_at"]:
                return self._error(
                    409, "UpdateCollisionError", "Saving failed! Someone else is editing this post."
                )
            newsletter = (call.query.get("newsletter") or [None])[0]
            status = post.get("status", stored["status"])
            if newsletter is not None and newsletter not in self.newsletters:
                return self._error(
                    404, "NotFoundError", f"Newsletter with slug {newsletter} not found."
                )
            if status == "scheduled":
                when = post.get("published_at")
                if not when or dt.datetime.fromisoformat(
                    when.replace("Z", "+00:00")
                ) <= dt.datetime.now(dt.UTC):
                    return self._error(
                        422, "ValidationError", "Validation error, cannot edit post.",
                        "Date must be at least 2 minutes in the future.",
                    )  # fmt: skip
            self._apply(stored, post)
            if status in ("published", "scheduled") and stored["status"] == "draft":
                if newsletter is None:
                    self.problem("published without ?newsletter=: Ghost would not email it")
                stored["newsletter"] = {"slug": newsletter}
                if status == "published":
                    stored["email"] = {"status": "submitted", "recipient_filter": "all"}
            stored["status"] = status
            return Answer(200, {"posts": [stored]})
        return self._error(404, "NotFoundError", "Resource not found")
