"""SMTP: one connection for the batch, STARTTLS / SSL / plain, login, one reconnect per message."""

from __future__ import annotations

import smtplib
import ssl

from digest.config import Secrets, SendSettings
from digest.errors import ConfigError, SendError
from digest.providers import Delivery, Outgoing


def make(settings: SendSettings, secrets: Secrets) -> SmtpProvider:
    """The SMTP provider from [send] and DIGEST_SMTP_PASSWORD."""
    password = secrets.smtp_password.get_secret_value() if secrets.smtp_password else None
    if settings.smtp_user and not password:
        raise ConfigError(
            f"send.smtp_user is {settings.smtp_user!r} but DIGEST_SMTP_PASSWORD is not set; "
            "put it in the environment or the workspace's .env"
        )
    return SmtpProvider(settings, password)


class SmtpProvider:
    """Sends each message over one reused SMTP connection."""

    name = "smtp"
    max_batch = 1
    max_batch_bytes = 0

    def __init__(self, settings: SendSettings, password: str | None) -> None:
        self.settings = settings
        self._password = password
        self._conn: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self.settings.smtp_host}:{self.settings.smtp_port}"

    def describe(self) -> str:
        """Host, port and security, for the confirmation prompt."""
        return f"smtp {self.where} ({self.settings.smtp_security})"

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        conn: smtplib.SMTP | None = None
        try:
            if s.smtp_security == "ssl":
                conn = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=s.smtp_timeout, context=context
                )
            else:
                conn = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            conn.ehlo()
            if s.smtp_security == "starttls":
                if not conn.has_extn("starttls"):
                    raise SendError(
                        f"SMTP server {self.where} does not offer STARTTLS; set "
                        'send.smtp_security = "ssl" (usually port 465) or "none" (local relays)'
                    )
                conn.starttls(context=context)
                conn.ehlo()
            if s.smtp_user:
                conn.login(s.smtp_user, self._password or "")
            return conn
        except smtplib.SMTPAuthenticationError as exc:
            _quietly_close(conn)
            raise SendError(
                f"SMTP server {self.where} refused the login of {s.smtp_user!r} "
                f"({exc.smtp_code} {_text(exc.smtp_error)}); check send.smtp_user and "
                "DIGEST_SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPNotSupportedError:
            _quietly_close(conn)
            raise SendError(
                f"SMTP server {self.where} does not support login (AUTH); clear send.smtp_user, "
                'or use send.smtp_security = "starttls" or "ssl" so it offers AUTH'
            ) from None
        except ssl.SSLError as exc:
            _quietly_close(conn)
            raise SendError(
                f"TLS with SMTP server {self.where} failed ({exc.reason or exc}); check "
                "send.smtp_security (ssl is usually port 465, starttls port 587)"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            _quietly_close(conn)
            reason = (
                exc.strerror
                if isinstance(exc, OSError) and exc.strerror
                else str(exc) or type(exc).__name__
            )
            raise SendError(
                f"cannot connect to SMTP server {self.where}: {reason}; is it running? "
                "check send.smtp_host and send.smtp_port"
            ) from None
        except SendError:
            _quietly_close(conn)
            raise

    def open(self) -> None:
        """Connect (and log in) once for the batch."""
        self._conn = self._connect()

    def verify(self) -> str:
        """Connect, EHLO, STARTTLS and log in as a send would; send nothing; what passed."""
        self.open()
        self.close()
        steps = ["connected", "EHLO"]
        if self.settings.smtp_security == "starttls":
            steps.append("STARTTLS")
        if self.settings.smtp_user:
            steps.append(f"login as {self.settings.smtp_user!r}")
        return f"{self.describe()}: {', '.join(steps)} ok; no message sent"

    def send(self, batch: list[Outgoing]) -> list[Delivery]:
        """Send one message; reconnect once if the connection drops."""
        (out,) = batch
        data = out.to_mime().as_bytes()
        rcpt = out.to.addr_spec
        lost = ""
        for _attempt in range(2):
            try:
                if self._conn is None:
                    self._conn = self._connect()
                self._conn.sendmail(out.sender.addr_spec, [rcpt], data)
                return [Delivery(out, ok=True, message_id=out.message_id)]
            except smtplib.SMTPRecipientsRefused as exc:
                code, reply = exc.recipients.get(rcpt, (0, b""))
                if code == 421:
                    lost = f"{code} {_text(reply)}"
                    self._drop()
                    continue
                if 400 <= code < 500:
                    raise SendError(
                        f"SMTP server {self.where} deferred {rcpt} ({code} {_text(reply)}); "
                        "try again later"
                    ) from None
                return [Delivery(out, ok=False, error=f"recipient refused: {code} {_text(reply)}")]
            except smtplib.SMTPSenderRefused as exc:
                if exc.smtp_code == 421:
                    lost = f"{exc.smtp_code} {_text(exc.smtp_error)}"
                    self._drop()
                    continue
                raise SendError(
                    f"SMTP server {self.where} refused the sender {out.sender.addr_spec} "
                    f"({exc.smtp_code} {_text(exc.smtp_error)}); check email.from and that this "
                    "server may send for that address"
                ) from None
            except smtplib.SMTPDataError as exc:
                if exc.smtp_code == 421:
                    lost = f"{exc.smtp_code} {_text(exc.smtp_error)}"
                    self._drop()
                    continue
                if 400 <= exc.smtp_code < 500:
                    raise SendError(
                        f"SMTP server {self.where} deferred the message to {rcpt} "
                        f"({exc.smtp_code} {_text(exc.smtp_error)}); try again later"
                    ) from None
                return [
                    Delivery(
                        out,
                        ok=False,
                        error=f"message refused: {exc.smtp_code} {_text(exc.smtp_error)}",
                    )
                ]
            except (smtplib.SMTPServerDisconnected, smtplib.SMTPResponseException, OSError) as exc:
                lost = str(exc) or type(exc).__name__
                self._drop()
                continue
        raise SendError(
            f"SMTP server {self.where} dropped the connection twice while sending to {rcpt} "
            f"({lost})"
        )

    def _drop(self) -> None:
        _quietly_close(self._conn)
        self._conn = None

    def close(self) -> None:
        """QUIT politely; ignore a server that is already gone."""
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.quit()
            except (OSError, smtplib.SMTPException):
                _quietly_close(conn)


def _quietly_close(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        try:
            conn.close()
        except OSError:
            pass


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
