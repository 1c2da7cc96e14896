"""What the audit and analytics jobs share: settings, the MySQL candle source, the MongoDB result sink, the
caller's summary and the entry point that maps failures to exit codes.

Public API (import from the submodules):

- ``errors``: ``WorkerError`` (``exit_code``, ``reason``) and its ``InvalidConfigError`` (exit 2),
  ``SourceUnavailableError`` (3), ``SinkUnavailableError`` (4)
- ``settings``: ``add_common_arguments(parser)``, ``load_settings(model, args, *, kind, overrides, environ)
  -> WorkerSettings[SpecT]``, ``termination_log_path(args, environ)``, ``WorkerSettings`` (``spec``,
  ``mysql_dsn``, ``mongodb_uri``, ``run_id``, ``resource``, ``shard``, ``termination_log``,
  ``connect_timeout``, ``symbols``, ``collection(default)``), ``Shard`` (``index``, ``count``, ``select``,
  ``label``)
- ``source``: ``MySqlDsn.parse(dsn)``, ``CandleSource(dsn, *, connect_timeout, pool_size)`` (async context
  manager: ``fetch_all``, ``fetch_one``, ``table_exists``, ``fetch_candles``), ``Candle``, ``table_name``,
  ``quote``, ``to_utc``, ``to_naive_utc``
- ``sink``: ``parse_mongodb_uri(uri)``, ``ResultSink(uri, database, *, connect_timeout)`` (async context
  manager: ``db``, ``ensure_indexes``, ``replace_run``, ``sweep_expired``, ``supports_decimal128``),
  ``RetentionMode``, ``decimal_codec_options``, ``expiry``, ``EXPIRES_FIELD``
- ``summary``: ``write_summary(summary, path)``, ``fit_summary(summary)``; the model is
  ``datamanager.contract.RunSummary``
- ``entrypoint``: ``run_job(job, main, args) -> int``
- ``urls``: ``split_url(text, what, schemes, example, *, several_hosts)`` -> ``ConnectionUrl`` (``where``,
  ``without_credentials()``), ``nats_login(servers)``, ``shown(url)``: connection URLs checked part by part,
  never repeated in a message or a log line
"""
