"""Everything a process needs, built once from the settings: the server and the CLI share it."""

from __future__ import annotations

from dataclasses import dataclass

from execdb.auth.service import TokenService
from execdb.auth.sessions import SessionService
from execdb.automation.outbox import Outbox
from execdb.automation.reactions import Reactions
from execdb.causes.catalogue import Catalogue, load_catalogue
from execdb.classify import load_rules
from execdb.config import Settings
from execdb.db import Database, make_engine
from execdb.jobs.limits import Limits
from execdb.jobs.reclassify import Reclassifier
from execdb.jobs.service import JobService
from execdb.jobs.triage import TriageService
from execdb.metrics import DatabaseFigures, Metrics
from execdb.prepared import Prepared
from execdb.rules.live import LiveRules
from execdb.rules.overview import RulesDesk
from execdb.rules.service import SavedRules
from execdb.stats.service import StatsService


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    db: Database
    catalogue: Catalogue
    jobs: JobService
    tokens: TokenService
    outbox: Outbox
    stats: StatsService
    classifier: LiveRules
    rules: SavedRules
    desk: RulesDesk
    reclassifier: Reclassifier
    metrics: Metrics
    figures: DatabaseFigures
    triage: TriageService
    sessions: SessionService

    @classmethod
    def build(cls, settings: Settings, db: Database | None = None) -> Services:
        catalogue = load_catalogue(settings.causes_file)
        # Compiled once per process, and again only when the saved rules change: loading the
        # rules takes tens of milliseconds. The file's first, before the database, so that bad
        # rules stop start-up before anything is made.
        shipped = load_rules(catalogue, settings.rules_file)
        db = db or database(settings)
        reactions = Reactions(
            catalogue,
            retry=settings.retry,
            notify=settings.notify,
            dispatch=settings.dispatch,
            base_url=settings.base_url or f"http://{settings.host}:{settings.port}",
            bus=settings.bus.enabled,
        )
        rules = SavedRules(db, catalogue, settings.rules_file)
        classifier = LiveRules(rules, settings.rules_refresh_seconds, initial=shipped)
        reclassifier = Reclassifier(db, catalogue, classifier, reactions=reactions)
        return cls(
            settings=settings,
            db=db,
            catalogue=catalogue,
            jobs=JobService(
                db,
                catalogue,
                limits=Limits(
                    details_max_bytes=settings.details_max_bytes,
                    executor_max_bytes=settings.executor_max_bytes,
                    trigger_data_max_bytes=settings.trigger_data_max_bytes,
                    history_payload_max_bytes=settings.history_payload_max_bytes,
                    page_max_bytes=settings.page_max_bytes,
                    log_max_bytes=settings.log_max_bytes,
                    finished_log_sample=settings.finished_log_sample,
                ),
                reactions=reactions,
                classifier=classifier,
            ),
            tokens=TokenService(db, cache_seconds=settings.token_cache_seconds),
            outbox=Outbox(db, settings.delivery),
            stats=StatsService(db, catalogue),
            classifier=classifier,
            reclassifier=reclassifier,
            metrics=Metrics(catalogue),
            figures=DatabaseFigures(db, terminal_cache_seconds=settings.metrics_cache_seconds),
            triage=TriageService(db, catalogue, reactions=reactions),
            sessions=SessionService(db, lifetime=settings.session_lifetime),
            rules=rules,
            desk=RulesDesk(rules, classifier, settings.rules_stale_days, reclassifier),
        )


def database(settings: Settings) -> Database:
    """The database the settings name; the embedded one's directory is made if need be."""
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.effective_database_url, pool_size=settings.db_pool_size)
    Prepared.enabled = settings.prepared_statements
    return Database(engine, connections=settings.db_pool_size, group_commit=settings.group_commit)
