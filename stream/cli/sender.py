"""``segments sender``: playbook actions to emails; ``segments smtp-sink``: a local SMTP sink."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import click

from stream.cli.context import CliContext
from stream.cli.signals import StopRequest
from stream.clients import ConfigError

log = logging.getLogger("stream.sender")


@click.command("sender")
@click.option("--print", "demo", is_flag=True, help="Demo mode: print each rendered email instead of sending it (own ledger and group).")
@click.option("--group-id", help="Consumer group of the actions topic (default 'segments-sender'; '<group>-print' with --print).")
@click.option("--group-instance-id", help="Static group membership: a name unique to this sender and kept across its restarts (README).")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Where the ledger (SQLite) lives. Default .segments/sender.")
@click.option("--templates-dir", type=click.Path(file_okay=False), help="Templates overriding the shipped ones, name by name.")
@click.option("--contacts-file", type=click.Path(dir_okay=False), help="CSV with customer_id,email[,name].")
@click.option("--recipient-pattern", help='For demos: every address from the customer id, e.g. "{customer_id}@example.com".')
@click.option("--smtp-host", help="SMTP server (default 127.0.0.1).")
@click.option("--smtp-port", type=int, help="SMTP port (default 25).")
@click.option("--smtp-security", type=click.Choice(["none", "starttls", "tls"]), help="Plain, STARTTLS or implicit TLS (default none).")
@click.option("--smtp-username", help="SMTP user; the password comes from SEGMENTS_SMTP_PASSWORD.")
@click.option("--from-address", help="The From address (default segments@localhost).")
@click.option("--metrics-host", help="Address of /metrics and /healthz (default 127.0.0.1).")
@click.option("--metrics-port", type=int, help="Port of /metrics and /healthz (default 6068; 0 picks a free one).")
@click.option("-l", "--loglevel", type=click.Choice(["error", "warn", "info", "debug"]), default="info", show_default=True)
@click.pass_obj
def sender(context: CliContext, demo: bool, group_id: str | None, loglevel: str, smtp_host: str | None, smtp_port: int | None,
           smtp_security: str | None, smtp_username: str | None, from_address: str | None, **options: object) -> None:
    """Send one email per `email` action of the playbook-actions topic, over SMTP.

    Exactly once across crashes and restarts, through a durable ledger (SQLite); at
    most one action, the one in flight at a crash, is left "unknown" (see the README).
    Ctrl-C or SIGTERM stop it cleanly after the email being sent.
    """
    from kafka.errors import InconsistentGroupProtocolError

    from stream.clients.topics import TopicSpec, ensure_topics
    from stream.sender.contacts import load_contacts
    from stream.sender.ledger import Ledger
    from stream.sender.metrics import MetricsServer, SenderMetrics
    from stream.sender.render import Renderer
    from stream.sender.runner import Sender
    from stream.sender.settings import load_sender_settings
    from stream.sender.smtp import PrintTransport, SmtpConfig, SmtpTransport

    level = {"error": logging.ERROR, "warn": logging.WARNING, "info": logging.INFO, "debug": logging.DEBUG}[loglevel]
    logging.getLogger("stream.sender").setLevel(level)
    if not logging.getLogger().handlers:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = load_sender_settings(
            context.config_file,
            smtp={"host": smtp_host, "port": smtp_port, "security": smtp_security, "username": smtp_username, "from_address": from_address},
            **options,
        )
        contacts = load_contacts(settings.contacts_file, settings.recipient_pattern)
        renderer = Renderer(settings.templates_dir)
        if settings.templates_dir and not Path(settings.templates_dir).is_dir():
            raise ConfigError(f"templates_dir: {settings.templates_dir} is not a folder")
    except ConfigError as error:
        raise click.ClickException(str(error)) from None
    kafka = context.kafka_settings()
    group = group_id or (f"{settings.group_id}-print" if demo else settings.group_id)
    smtp = settings.smtp
    if demo:
        transport = PrintTransport()
        target = "printing (demo mode)"
    else:
        import ssl

        context_ssl = None
        if smtp.security != "none":
            context_ssl = ssl.create_default_context(cafile=smtp.ca_file)
            context_ssl.check_hostname = smtp.check_hostname
            if not smtp.check_hostname:
                context_ssl.verify_mode = ssl.CERT_NONE
        transport = SmtpTransport(SmtpConfig(smtp.host, smtp.port, smtp.security, smtp.username, smtp.password,
                                             smtp.timeout_seconds, smtp.local_hostname, context_ssl))
        auth = f", as {smtp.username!r}" if smtp.username else ""
        target = f"SMTP {smtp.host}:{smtp.port} ({smtp.security}{auth})"

    ensure_topics(kafka, [
        TopicSpec(settings.topics.actions, settings.partitions, settings.replication_factor),
        TopicSpec(settings.topics.dead_letter, settings.partitions, settings.replication_factor),
        TopicSpec(settings.topics.customer_profiles, settings.partitions, settings.replication_factor, {"cleanup.policy": "compact"}),
    ])
    ledger = Ledger(settings.ledger_path(demo=demo))
    metrics = SenderMetrics()
    try:
        server = MetricsServer(metrics, settings.metrics_host, settings.metrics_port,
                               stale_seconds=max(60.0, 3 * smtp.timeout_seconds)).start()
    except OSError as error:
        raise click.ClickException(f"metrics port {settings.metrics_host}:{settings.metrics_port}: {error.strerror or error}") from None
    contact_note = f"{len(contacts)} contact(s)" + (f" + pattern {settings.recipient_pattern!r}" if settings.recipient_pattern else "")
    click.echo(
        f"segments sender: Kafka {kafka.describe()}, group {group}, {target}, ledger {ledger.path}, {contact_note}, "
        f"metrics http://{settings.metrics_host}:{server.port}/metrics",
        err=True,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    runner = Sender(settings, kafka, transport=transport, renderer=renderer, contacts=contacts, ledger=ledger,
                    metrics=metrics, group_id=group)
    try:
        runner.run(stop)
    except InconsistentGroupProtocolError as error:
        # The only assignor a sender offers is its own (one active sender per group).
        raise click.ClickException(
            f"group {group}: another member uses another partition assignor ({error}); a sender older than the one-active-sender"
            " assignor (2026-11-28) is probably still running in the group: stop it first (README: One active sender, others"
            " standing by)"
        ) from error
    finally:
        server.stop()
        ledger.close()
    click.echo("segments sender: stopped", err=True)


@click.command("smtp-sink")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (loopback unless you mean otherwise).")
@click.option("--port", type=int, default=2525, show_default=True)
@click.option("--save-dir", type=click.Path(file_okay=False), help="Also save each message as <n>.eml in this folder.")
@click.option("--quiet", is_flag=True, help="One line per message instead of the whole text.")
def smtp_sink(host: str, port: int, save_dir: str | None, quiet: bool) -> None:
    """A local SMTP server that accepts every message and prints it (aiosmtpd). Point the
    sender at it with --smtp-host/--smtp-port; Ctrl-C stops it."""
    from stream.sender.sink import ReceivedMail, SinkHandler, SmtpSink

    folder = Path(save_dir) if save_dir else None
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
    count = 0
    lock = threading.Lock()

    def show(mail: ReceivedMail) -> None:
        nonlocal count
        with lock:
            count += 1
            number = count
        message = mail.message()
        if folder is not None:
            (folder / f"{number:06d}.eml").write_bytes(mail.content)
        line = f"#{number} {message['Message-ID']} to {', '.join(mail.rcpt_tos)}: {message['Subject']}"
        if quiet:
            click.echo(line)
            return
        body = message.get_body(("plain",))
        text = body.get_content().rstrip() if body is not None else "(no text part)"
        click.echo(f"──── {line}\n{text}\n")

    sink = SmtpSink(SinkHandler(on_message=show), host, port)
    try:
        sink.start()
    except Exception as error:  # aiosmtpd wraps bind errors; say which port
        raise click.ClickException(f"cannot listen on {host}:{port}: {error}") from None
    click.echo(f"segments smtp-sink: listening on {host}:{port} (Ctrl-C stops)", err=True)
    stop = StopRequest((signal.SIGTERM,))  # Ctrl-C: KeyboardInterrupt
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        stop.restore()
        sink.stop()
        click.echo(f"segments smtp-sink: {count} message(s) received", err=True)
