"""The ``espi`` command: validate, summarize and export Green Button files.

Exit codes (every command): 0 success; 1 a file is not valid (``validate``) or has findings
(``lint``); 2 a file could not be read (missing, a directory, not well-formed, unsafe, not
what the command reads) or an output could not be written; 3 a provider refused or did not
answer (``fetch``). Every failure is one ``error:`` line on stderr, never a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import click

from . import export
from .errors import EspiWarning, ParseError, ProviderError
from .lint import lint
from .model import (
    COST_SCALE,
    Feed,
    IntervalReading,
    ReadingType,
    UsagePoint,
    UsageSummary,
    to_datetime,
)
from .reader import ParseOptions, iter_readings, open_source, parse
from .schema import SCHEMA_SETS, validate
from .timeline import Timeline
from .writer import DEFAULT_BASE, WriteOptions, write

log = logging.getLogger(__name__)

#: Files smaller than this get no progress bar: it would only flicker.
PROGRESS_MIN_BYTES = 8 << 20


@contextlib.contextmanager
def reading_options(path: str) -> Iterator[ParseOptions]:
    """Parse options for a CLI read: quirks reported by the CLI itself, and a progress bar on
    stderr for large files when stderr is a terminal."""
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    if size < PROGRESS_MIN_BYTES or not sys.stderr.isatty():
        yield ParseOptions(warn=False)
        return
    with click.progressbar(
        length=size, label=os.path.basename(path), file=sys.stderr, show_eta=True
    ) as bar:
        done = [0]

        def progress(count: int) -> None:
            bar.update(count - done[0])
            done[0] = count

        yield ParseOptions(warn=False, progress=progress)


def report_quirks(quirks: list[Any]) -> None:
    for q in quirks:
        click.echo(f"tolerated: {q}", err=True)


def fail(err: ParseError) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    sys.exit(2)


class Command(click.Group):
    """The ``espi`` group: whatever goes wrong in a command is one line on stderr."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ParseError as err:
            fail(err)
        except ProviderError as err:
            provider_failed(err)
        except OSError as err:  # an output that cannot be written
            click.echo(f"error: {err.filename or ''}: {err.strerror or err}".strip(), err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as err:  # a bug: still one line, and a way to see more
            log.debug("unexpected error", exc_info=True)
            click.echo(f"error: unexpected {type(err).__name__}: {err} (please report)", err=True)
            sys.exit(1)


class FromEnv(click.Option):
    """An option that may come from its environment variable instead: ``--help`` names the
    variable, and the option is needed only when neither gives a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.needed = kwargs.pop("required", False)
        kwargs["show_envvar"] = True
        super().__init__(*args, **kwargs)

    def process_value(self, ctx: click.Context, value: Any) -> Any:
        value = super().process_value(ctx, value)
        if self.needed and self.value_is_missing(value) and not ctx.resilient_parsing:
            raise click.MissingParameter(
                ctx=ctx, param=self, message=f"give {self.opts[0]} or set {self.envvar}"
            )
        return value


@click.group(cls=Command, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="espi")
def main() -> None:
    """Read, check and convert Green Button (ESPI) energy data files."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")


@main.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option(
    "--schema",
    type=click.Choice(list(SCHEMA_SETS)),
    default="4.0",
    show_default=True,
    help="Schema set to validate against.",
)
def validate_cmd(files: tuple[str, ...], schema: str) -> None:
    """Check FILES against the ESPI XML schemas: one FILE:LINE: message per problem.

    Exit 0 when all are valid, 1 when any is invalid, 2 when any cannot be read.
    """

    def check(path: str) -> list[Any]:
        with reading_options(path) as options:
            return validate(path, schema, options)

    check_files(
        files,
        check,
        lambda path, problems: (
            f"{path}: invalid against ESPI {schema} ({len(problems)} problem(s))"
            if problems
            else f"{path}: valid against ESPI {schema}",
            bool(problems),
        ),
    )


def check_files(
    files: tuple[str, ...],
    check: Callable[[str], list[Any]],
    verdict: Callable[[str, list[Any]], tuple[str, bool]],
) -> NoReturn:
    """Run ``check`` on each file, print what it found and ``verdict``'s line, and exit 0 (all
    good), 1 (something found) or 2 (a file could not be read)."""
    status = 0
    for path in files:
        try:
            found = check(path)
        except ParseError as err:
            click.echo(f"error: {err}", err=True)
            status = 2
            continue
        for item in found:
            click.echo(str(item))
        line, bad = verdict(path, found)
        click.echo(line)
        if bad:
            status = max(status, 1)
    sys.exit(status)


@dataclass
class Series:
    """What the summary keeps of one usage point's readings of one reading type."""

    usage_point: UsagePoint | None
    reading_type: ReadingType | None
    count: int = 0
    total: int = 0
    missing: int = 0  # readings without a value: counted apart, never as zero
    cost: int = 0
    costed: int = 0
    timeline: Timeline = field(default_factory=Timeline)

    def add(self, r: IntervalReading) -> None:
        self.count += 1
        if r.value is None:
            self.missing += 1
        else:
            self.total += r.value
        if r.cost is not None:
            self.cost += r.cost
            self.costed += 1
        if r.start is not None:
            self.timeline.add(r.start, r.duration)


def fmt_time(epoch: int | None) -> str:
    dt = to_datetime(epoch)
    return "?" if dt is None else f"{dt:%Y-%m-%d %H:%M}Z"


def fmt_span(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    parts = [
        f"{days} d" if days else "",
        f"{hours} h" if hours else "",
        f"{rest // 60} min" if rest >= 60 else "",
    ]
    return " ".join(p for p in parts if p) or f"{seconds} s"


def fmt_quantity(raw: int, rt: ReadingType | None) -> str:
    power = int(rt.power_of_ten_multiplier or 0) if rt is not None else 0
    unit = rt.unit if rt is not None else ""
    value = raw * 10.0**power
    if unit in ("Wh", "W", "VAh", "VArh", "VA", "VAr") and abs(value) >= 10_000:
        return f"{value / 1000:,.3f} k{unit}"
    return f"{value:,.3f} {unit}".rstrip()


def fmt_money(amount: int, rt: ReadingType | UsageSummary | None) -> str:
    currency = rt.currency.label if rt is not None and rt.currency is not None else ""
    return f"{amount / COST_SCALE:,.2f} {currency}".rstrip()


def describe_type(rt: ReadingType | None) -> str:
    if rt is None:
        return "reading type unknown (the file does not say)"
    parts = [rt.unit or "no unit"]
    if rt.power_of_ten_multiplier:
        parts.append(f"x10^{int(rt.power_of_ten_multiplier)}")
    if rt.flow_direction is not None:
        parts.append(rt.flow_direction.label)
    if rt.kind is not None:
        parts.append(rt.kind.label)
    if rt.interval_length:
        parts.append(f"interval {fmt_span(rt.interval_length)}")
    return ", ".join(parts)


@main.command("summary")
@click.argument("file", type=click.Path())
def summary_cmd(file: str) -> None:
    """What FILE holds: usage points, reading types, period, totals, cost and gaps."""
    series: dict[tuple[int, int], Series] = {}
    with reading_options(file) as options:
        stream = iter_readings(file, options)
        try:
            for r in stream:
                key = (id(r.usage_point), id(r.reading_type))
                s = series.get(key)
                if s is None:
                    s = series[key] = Series(r.usage_point, r.reading_type)
                s.add(r)
        except ParseError as err:
            fail(err)
    out = click.echo
    out(file)
    usage_points = [x for x in stream.resources if isinstance(x, UsagePoint)]
    out(f"  usage points: {len(usage_points)}; readings: {sum(s.count for s in series.values()):,}")
    for up in [*usage_points, None]:
        mine = [s for s in series.values() if s.usage_point is up]
        if up is None and not mine:
            continue
        name = export.resource_key(up) if up is not None else "(readings not tied to a usage point)"
        kind = up.kind.label if up is not None and up.kind is not None else "service kind not given"
        out(f"  usage point {name}: {kind}")
        for s in mine:
            t = s.timeline
            out(f"    {describe_type(s.reading_type)}")
            span = (t.last_end or 0) - (t.first or 0)
            out(f"      period: {fmt_time(t.first)} to {fmt_time(t.last_end)} ({fmt_span(span)})")
            line = f"      readings: {s.count:,}; total {fmt_quantity(s.total, s.reading_type)}"
            if s.missing:
                line += f" ({s.missing:,} without a value: missing, not zero)"
            if s.costed:
                line += f"; cost {fmt_money(s.cost, s.reading_type)}"
            out(line)
            if t.longest_gap is not None:
                out(
                    f"      gaps: {t.gaps}, longest {fmt_span(t.longest_gap.seconds)} "
                    f"from {fmt_time(t.longest_gap.start)}"
                )
            else:
                out("      gaps: none")
            if t.overlaps:
                out(f"      overlapping readings: {t.overlaps}")
            if note := t.order_note():
                out(f"      note: {note}")
        bills = up.usage_summaries if up is not None else []
        if bills:
            total = sum(b.bill_last_period or 0 for b in bills)
            out(f"    bills (usage summaries): {len(bills)}, billed {fmt_money(total, bills[0])}")
    report_quirks(stream.quirks)


def remove_if_there(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def reads_xml(path: str, command: str, accepts: str) -> None:
    """Refuse, before any output, a file that is plainly not XML, saying what the command
    reads (a JSON or CSV file gets that, not an XML syntax error)."""
    raw, name, close = open_source(path)
    try:
        head = raw.read(512).lstrip(b"\xef\xbb\xbf \t\r\n")
    except OSError as err:
        raise ParseError(f"cannot read: {err.strerror or err}", file=name) from err
    finally:
        if close:
            raw.close()
    if not head:
        raise ParseError(f"empty file: {command} reads {accepts}", file=name)
    if not head.startswith(b"<"):
        kind = "JSON" if head[:1] in (b"{", b"[") else "not XML"
        raise ParseError(f"{kind}: {command} reads {accepts}", file=name)


@main.command("export")
@click.argument("file", type=click.Path())
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Default: stdout.")
def export_cmd(file: str, fmt: str, output: str | None) -> None:
    """A row per reading of FILE (Green Button XML) as CSV or JSON: usage point, reading
    type, start (UTC), duration, value in the reading type's unit, unit, cost, currency,
    quality. Nothing is written when FILE cannot be read: output goes to OUT.partial (or a
    buffer, for stdout) and only a complete export is kept."""
    reads_xml(file, "export", "Green Button (ESPI) XML")
    write = export.write_csv if fmt == "csv" else export.write_json
    with contextlib.ExitStack() as stack:
        options = stack.enter_context(reading_options(file))
        if output:
            tmp = output + ".partial"
            stack.callback(remove_if_there, tmp)
            target: IO[str] = stack.enter_context(open(tmp, "w", encoding="utf-8", newline=""))
        else:
            target = stack.enter_context(
                tempfile.SpooledTemporaryFile(8 << 20, "w+", encoding="utf-8", newline="")
            )
        stream = iter_readings(file, options)
        n = write(stream, target)
        if output:
            target.close()
            os.replace(tmp, output)
            click.echo(f"{output}: {n:,} readings", err=True)
        else:
            target.seek(0)
            shutil.copyfileobj(target, sys.stdout)
    report_quirks(stream.quirks)


@main.command("lint")
@click.argument("files", nargs=-1, required=True, type=click.Path())
@click.option("--limit", default=20, show_default=True, help="Findings of one kind to list.")
def lint_cmd(files: tuple[str, ...], limit: int) -> None:
    """Check FILES beyond the schema: gaps, overlaps, readings outside their block,
    intervalLength against durations, DST days, duplicate ids, dangling links, overlapping
    bills, cost without currency, implausible values.

    One FILE:LINE: severity: message [code] per finding. Exit 0 when there is no error or
    warning, 1 when there is, 2 when a file cannot be read.
    """

    def verdict(path: str, findings: list[Any]) -> tuple[str, bool]:
        serious = sum(f.severity != "info" for f in findings)
        notes = len(findings) - serious
        return f"{path}: {serious} error(s) and warning(s), {notes} note(s)", serious > 0

    check_files(files, lambda path: lint(path, limit), verdict)


@main.command("convert")
@click.argument("source", type=click.Path())
@click.option(
    "-o", "--output", required=True, type=click.Path(dir_okay=False), help="The ESPI file to write."
)
@click.option(
    "--from", "kind", type=click.Choice(["auto", "csv", "xml"]), default="auto", show_default=True,
    help="The input: a CSV in the `espi export` format, or any readable Green Button file.",
)  # fmt: skip
@click.option("--zone", help="IANA time zone of CSV data, for local-day blocks (default UTC).")
@click.option("--base", default=DEFAULT_BASE, show_default=True, help="URL prefix of links.")
def convert_cmd(source: str, output: str, kind: str, zone: str | None, base: str) -> None:
    """Write SOURCE (any readable Green Button XML file, or a CSV in the `espi export`
    format) as normalized, schema-valid ESPI 4.0 Green Button XML."""
    if kind == "auto":
        kind = "csv" if source.lower().endswith(".csv") else "xml"
    if kind == "xml":
        reads_xml(source, "convert", "Green Button XML, or a CSV in the `espi export` format")
    try:
        if kind == "csv":
            with open(source, encoding="utf-8-sig", newline="") as f:
                feed = export.read_csv(f, source, local_time=zone)
        else:
            with reading_options(source) as options:
                feed = parse(source, options)
            report_quirks(feed.quirks)
    except OSError as err:
        fail(ParseError(f"cannot open: {err.strerror or err}", file=source))
    except UnicodeDecodeError as err:
        fail(
            ParseError(
                f"not UTF-8 text at byte {err.start}: convert reads an `espi export` CSV",
                file=source,
            )
        )
    write_reporting(feed, output, WriteOptions(base=base))
    count = sum(1 for _ in feed.readings())
    click.echo(f"{output}: {len(feed.usage_points)} usage point(s), {count:,} readings", err=True)


def write_reporting(feed: Feed, output: str, options: WriteOptions) -> None:
    """Write a feed; what the writer had to repair or leave out for ESPI 4.0 goes to stderr,
    one ``warning:`` line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EspiWarning)
        write(feed, output, options)
    for w in caught:
        click.echo(f"warning: {w.message}", err=True)


# --------------------------------------------------------------------------- providers

DATE = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"])


def epoch_of(value: datetime | None) -> int | None:
    """A CLI date (UTC unless it says otherwise) as epoch seconds."""
    if value is None:
        return None
    return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())


def provider_failed(err: ProviderError) -> NoReturn:
    click.echo(f"error: {err}", err=True)
    if err.body and err.body not in str(err):
        click.echo(f"answer: {err.body[:500]}", err=True)
    sys.exit(3)


def write_fetched(feed: Feed, output: str, base: str) -> None:
    write_reporting(feed, output, WriteOptions(base=f"{base}/espi/1_1/resource"))
    count = sum(1 for _ in feed.readings())
    click.echo(
        f"{output}: {len(feed.usage_points)} usage point(s), {count:,} readings, "
        f"{len(feed.usage_summaries)} bill(s)",
        err=True,
    )


@main.group("fetch")
def fetch_group() -> None:
    """Fetch a provider's data and write it as Green Button XML (exit 3: the provider refused).

    Credentials come from options or the environment, never from files in the repository."""


@fetch_group.command("pelm")
@click.option(
    "--client-id", cls=FromEnv, envvar="PELM_CLIENT_ID", required=True, help="Pelm-Client-Id."
)
@click.option("--secret", cls=FromEnv, envvar="PELM_SECRET", required=True, help="Pelm-Secret.")
@click.option(
    "--token",
    cls=FromEnv,
    envvar="PELM_ACCESS_TOKEN",
    required=True,
    help="The user's access token.",
)
@click.option("--start", type=DATE, help="First day (UTC; default: Pelm's last two months).")
@click.option("--end", type=DATE, help="Day after the last (UTC).")
@click.option("--zone", help="IANA zone for local-day blocks (default: from the utility).")
@click.option("--no-bills", is_flag=True, help="Intervals only.")
@click.option("--base-url", default=None, help="API base (default https://api.pelm.com).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
def fetch_pelm(
    client_id: str,
    secret: str,
    token: str,
    start: datetime | None,
    end: datetime | None,
    zone: str | None,
    no_bills: bool,
    base_url: str | None,
    output: str,
) -> None:
    """Every account of a Pelm user: electric and gas intervals, emissions and bills."""
    from .providers import Credentials
    from .providers.pelm import Pelm

    if (start is None) != (end is None):
        raise click.UsageError("give --start and --end together, or neither")
    client = Pelm(client_id, secret, base_url=base_url)
    try:
        feed = client.fetch(
            Credentials(access_token=token),
            epoch_of(start),
            end=epoch_of(end),
            zone=zone,
            bills=not no_bills,
        )
    except ProviderError as err:
        provider_failed(err)
    write_fetched(feed, output, client.base_url)


@fetch_group.command("wattshift")
@click.option(
    "--api-key", cls=FromEnv, envvar="WATTSHIFT_API_KEY", required=True, help="x-ws-api-key."
)
@click.option("--home", help="The home whose prices to fetch.")
@click.option("--zip", "zipcode", help="Without --plan: list the utilities and rate plans.")
@click.option("--plan", help="With --zip: create a home on this rate plan and use it.")
@click.option("--start", type=DATE, help="First day (UTC; default: the home's today).")
@click.option("--end", type=DATE, help="Day after the last (UTC).")
@click.option(
    "--price", "usage", type=click.Path(dir_okay=False, exists=True),
    help="A Green Button file whose readings to price: it is written with costs and TOU.",
)  # fmt: skip
@click.option("--zone", default="America/Los_Angeles", show_default=True)
@click.option("--base-url", default=None, help="API base (default https://api.wattshift.com).")
@click.option("-o", "--output", type=click.Path(dir_okay=False))
def fetch_wattshift(
    api_key: str,
    home: str | None,
    zipcode: str | None,
    plan: str | None,
    start: datetime | None,
    end: datetime | None,
    usage: str | None,
    zone: str,
    base_url: str | None,
    output: str | None,
) -> None:
    """A home's 15-minute price signal as Green Button readings, or (--price FILE) FILE's
    readings priced on the home's rate plan."""
    from .providers import Credentials
    from .providers import wattshift as ws

    client = ws.WattShift(api_key, base_url=base_url)
    try:
        if home is None and zipcode and not plan:
            for utility in client.utilities(zipcode):
                click.echo(f"{utility.id}  {utility.name}")
                for p in utility.rate_plans:
                    click.echo(f"    {p.id}  {p.name}")
            return
        if home is None:
            if not (zipcode and plan):
                raise click.UsageError("give --home, or --zip and --plan to create one")
            utility_id = next(
                (
                    u.id
                    for u in client.utilities(zipcode)
                    if any(p.id == plan for p in u.rate_plans)
                ),
                None,
            )
            if utility_id is None:
                raise click.UsageError(f"rate plan {plan} is not offered at {zipcode}")
            home = str(client.create_home(f"espi {zipcode}", zipcode, utility_id, plan)["id"])
            click.echo(f"created home {home}", err=True)
        if output is None:
            raise click.UsageError("give -o/--output")
        if usage is None:
            since, until = epoch_of(start), epoch_of(end)
            feed = client.fetch(Credentials(account=home), since, end=until, zone=zone)
        else:
            feed = price_file(client, home, usage)
    except ProviderError as err:
        provider_failed(err)
    write_fetched(feed, output, client.base_url)


@fetch_group.command("wattzon")
@click.option(
    "--cert",
    cls=FromEnv,
    envvar="WATTZON_CERT",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="The client certificate WattzOn signed (PEM).",
)
@click.option(
    "--key",
    cls=FromEnv,
    envvar="WATTZON_KEY",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Its private key (PEM).",
)
@click.option(
    "--ca",
    cls=FromEnv,
    envvar="WATTZON_CA",
    type=click.Path(exists=True, dir_okay=False),
    help="CA bundle for WattzOn's server certificate (default: the system's).",
)
@click.option("--zip", "zipcode", help="Without --profile or --utility: list the utilities there.")
@click.option("--profile", type=int, help="The profile whose data to fetch.")
@click.option("--utility", type=int, help="With --zip: create a profile at this utility.")
@click.option(
    "--username", cls=FromEnv, envvar="WATTZON_USERNAME", help="The utility website's username."
)
@click.option(
    "--password", cls=FromEnv, envvar="WATTZON_PASSWORD", help="Its password (asked when missing)."
)
@click.option(
    "--extract",
    type=click.Choice(["none", "bill", "interval", "both"]),
    default="none",
    show_default=True,
    help="Run extraction jobs first (a new profile: both).",
)
@click.option("--poll", type=float, default=5.0, show_default=True,
              help="Seconds between checks of a running job.")  # fmt: skip
@click.option("--since", type=DATE, help="Interval months from this day on (default: all).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["json", "csv", "source"]),
    default="json",
    show_default=True,
    help="The interval files: normalized (json, csv) or the utility's own (source).",
)
@click.option("--zone", help="IANA zone for local-day blocks (default UTC days).")
@click.option("--base-url", default=None, help="API base (default https://api.wattzon.com).")
@click.option("-o", "--output", type=click.Path(dir_okay=False))
def fetch_wattzon(
    cert: str,
    key: str,
    ca: str | None,
    zipcode: str | None,
    profile: int | None,
    utility: int | None,
    username: str | None,
    password: str | None,
    extract: str,
    poll: float,
    since: datetime | None,
    fmt: str,
    zone: str | None,
    base_url: str | None,
    output: str | None,
) -> None:
    """A WattzOn Link profile's bills and interval data (over mutual TLS), after extraction
    jobs if asked; or the utilities at a ZIP code; or a new profile for a customer."""
    from .providers import Credentials
    from .providers.wattzon import WattzOn

    client = WattzOn((cert, key), base_url=base_url, verify=ca)
    try:
        if profile is None and utility is None:
            if not zipcode:
                raise click.UsageError(
                    "give --profile, --zip to list utilities, or --utility and --zip"
                )
            for uid in client.find_utilities(zipcode=zipcode):
                info = client.utility(uid)
                click.echo(f"{uid}  {info.get('name')}  ({info.get('type')})")
            return
        if output is None:
            raise click.UsageError("give -o/--output")
        if profile is None:
            if not username:
                raise click.UsageError("a new profile needs --username (and --password)")
            password = password or click.prompt("utility password", hide_input=True)
            profile = client.create_profile(int(utility or 0), zipcode=zipcode)
            client.set_credentials(profile, username, str(password))
            click.echo(f"created profile {profile}", err=True)
            extract = "both" if extract == "none" else extract
        for mode in ("bill", "interval") if extract == "both" else (extract,) * (extract != "none"):
            run_job(client, profile, mode, poll)
        credentials = Credentials(account=str(profile))
        feed = client.fetch(credentials, epoch_of(since), format=fmt, zone=zone)
    except ProviderError as err:
        provider_failed(err)
    write_fetched(feed, output, client.base_url)


def run_job(client: Any, profile: int, mode: str, poll: float) -> None:
    """Run one extraction job, with a progress bar over the seed's statuses."""
    from .providers.wattzon import IN_PROGRESS

    job = client.start_job(profile, mode=mode, notify=False)
    with click.progressbar(length=len(IN_PROGRESS) + 1, label=f"{mode} job", file=sys.stderr,
                           item_show_func=lambda s: s) as bar:  # fmt: skip
        done = [0]

        def show(status: Any) -> None:
            if status.finished:
                step = len(IN_PROGRESS) + 1
            elif status.state in IN_PROGRESS:
                step = IN_PROGRESS.index(status.state) + 1
            else:
                step = done[0]  # a status WattzOn added since: the bar waits
            bar.update(max(0, step - done[0]), status.state)
            done[0] = max(done[0], step)

        client.wait(job, poll=poll, progress=show)


@fetch_group.command("griddy")
@click.option(
    "--email", cls=FromEnv, envvar="GRIDDY_EMAIL", required=True, help="The member's email."
)
@click.option(
    "--password", cls=FromEnv, envvar="GRIDDY_PASSWORD", help="Their password (asked when missing)."
)
@click.option(
    "--prices",
    "point",
    type=click.Choice(["LZ_HOUSTON", "LZ_NORTH", "LZ_SOUTH", "LZ_WEST"]),
    help="Write this load zone's prices now and forecast, instead of the member's use.",
)
@click.option("--zone", help="IANA zone for local-day blocks (default: the meter's, Central).")
@click.option("--base-url", default=None, help="API base (default https://app.gogriddy.com).")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False))
def fetch_griddy(
    email: str,
    password: str | None,
    point: str | None,
    zone: str | None,
    base_url: str | None,
    output: str,
) -> None:
    """A Griddy member's hourly use with cost and price, and monthly totals (Griddy closed in
    2021: this works against a stand-in such as the sandbox's)."""
    from .providers.griddy import Griddy, prices_feed

    password = password or click.prompt("Griddy password", hide_input=True)
    client = Griddy(base_url=base_url)
    try:
        credentials = client.sign_in(email, str(password))
        feed = (
            prices_feed(client.prices(credentials, point), client.base_url)
            if point
            else client.fetch(credentials, zone=zone)
        )
    except ProviderError as err:
        provider_failed(err)
    write_fetched(feed, output, client.base_url)


def price_file(client: Any, home: str, path: str) -> Feed:
    from .codes import Currency
    from .providers.wattshift import price

    try:
        feed = parse(path, ParseOptions(warn=False))
    except ParseError as err:
        fail(err)
    readings = list(feed.readings())
    spans = [(r.start, r.start + (r.duration or 0)) for r in readings if r.start is not None]
    if not spans:
        raise click.UsageError(f"{path} has no readings to price")
    signal = client.price_signal_between(home, min(a for a, _ in spans), max(b for _, b in spans))
    priced = price(readings, signal)
    for mr in feed.meter_readings:
        if mr.reading_type is not None and mr.reading_type.currency is None:
            mr.reading_type.currency = Currency.USD
    click.echo(f"priced {priced:,} of {len(readings):,} readings", err=True)
    return feed


# --------------------------------------------------------------------------- a custodian


PEM = click.Path(exists=True, dir_okay=False)


@fetch_group.command("custodian")
@click.argument("profile_name", metavar="PROFILE")
@click.argument("uri")
@click.option(
    "--client-id", cls=FromEnv, envvar="ESPI_CLIENT_ID", help="Our client id at the custodian."
)
@click.option("--client-secret", cls=FromEnv, envvar="ESPI_CLIENT_SECRET", help="Its secret.")
@click.option(
    "--access-token",
    cls=FromEnv,
    envvar="ESPI_ACCESS_TOKEN",
    help="A customer's access token (Subscription resources).",
)
@click.option(
    "--registration-token",
    cls=FromEnv,
    envvar="ESPI_REGISTRATION_TOKEN",
    help="Our registration access token (ApplicationInformation).",
)
@click.option(
    "--cert", cls=FromEnv, envvar="ESPI_CLIENT_CERT", type=PEM, help="Client certificate (mTLS)."
)
@click.option("--key", cls=FromEnv, envvar="ESPI_CLIENT_KEY", type=PEM, help="Its private key.")
@click.option(
    "--ca", cls=FromEnv, envvar="ESPI_CA_BUNDLE", type=PEM, help="CA bundle for the custodian."
)
@click.option(
    "--base-url",
    help="The custodian's origin (e.g. http://127.0.0.1:5011): moves the profile's authorize, "
    "token and resource URLs there.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="NAME=VALUE",
    help="A profile setting (token_url, resource_base, published_format, ...).",
)
@click.option("--since", type=DATE, help="published-min (UTC).")
@click.option("--until", type=DATE, help="published-max (UTC).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Default: stdout.")
def fetch_custodian(
    profile_name: str,
    uri: str,
    client_id: str | None,
    client_secret: str | None,
    access_token: str | None,
    registration_token: str | None,
    cert: str | None,
    key: str | None,
    ca: str | None,
    base_url: str | None,
    overrides: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    output: str | None,
) -> None:
    """GET URI from a Green Button Connect My Data custodian and write the answer as it came
    (streamed). PROFILE: pge, pge-test, local (`make run`'s custodian), or a new name with
    --set token_url=... --set resource_base=.... URI: absolute, or a path under the resource
    base (Batch/Bulk/ID, Batch/Subscription/ID, ReadServiceStatus, ...).

    The path decides the token: the client token (ESPI_CLIENT_ID, ESPI_CLIENT_SECRET) for
    Bulk, Authorization, ReadServiceStatus; ESPI_REGISTRATION_TOKEN (else the client token)
    for ApplicationInformation; a customer's ESPI_ACCESS_TOKEN for the rest. Exit 3 with the
    reason when the URI is refused (outside the resource base, a redirect), when the custodian
    refuses, or when it answers 202 (the data will come by notification)."""
    from .client import Accepted, Custodian, TokenKind, profile, token_kind
    from .errors import NotReady
    from .providers.base import Credentials

    values: dict[str, Any] = {}
    for item in overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise click.UsageError(f"--set {item}: give NAME=VALUE")
        values[name.strip()] = value
    given = {
        "client_id": client_id,
        "client_secret": client_secret,
        "client_cert": cert,
        "client_key": key,
        "ca_bundle": ca,
        "registration_token": registration_token,
    }
    values.update({k: v for k, v in given.items() if v})
    try:
        chosen = profile(profile_name, **values)
        if base_url:
            moved = {k: rebase(getattr(chosen, k), base_url)
                     for k in ("authorize_url", "token_url", "resource_base")}  # fmt: skip
            chosen = chosen.configure(moved)
    except ValueError as err:
        raise click.UsageError(str(err)) from None
    custodian = Custodian(chosen)
    credentials = Credentials(access_token=access_token) if access_token else None
    params = chosen.published(epoch_of(since), epoch_of(until))
    try:
        checked = chosen.resource(uri)
        kind = token_kind(chosen.relative(checked))
        client = chosen.client_id and chosen.client_secret
        lacking = {
            TokenKind.CUSTOMER: "" if credentials else "ESPI_ACCESS_TOKEN",
            TokenKind.CLIENT: "" if client else "ESPI_CLIENT_ID and ESPI_CLIENT_SECRET",
        }.get(kind, "" if client or chosen.registration_token else "ESPI_REGISTRATION_TOKEN")
        if lacking:
            raise click.UsageError(f"{checked} is read with the {kind} token: set {lacking}")
        target: str | IO[bytes] = output or sys.stdout.buffer
        got = custodian.download(checked, target, credentials=credentials, params=params)
        if isinstance(got, Accepted):
            raise NotReady(
                f"{chosen.title or chosen.name} accepted the request for {got.uri} (202): the data "
                "will come by notification to the third party's notification URI; nothing written",
                provider=custodian.slug,
                status=202,
            )
    except ProviderError as err:
        provider_failed(err)
    click.echo(
        f"{output or 'stdout'}: {got.size:,} bytes ({got.content_type}) from {got.uri}", err=True
    )


def rebase(url: str, new_origin: str) -> str:
    """``url`` with its scheme, host and port replaced (empty stays empty)."""
    if not url:
        return url
    parts = urlsplit(url)
    return urlunsplit((*urlsplit(new_origin)[:2], parts.path, parts.query, ""))
