"""The delivery engine: a broadcast becomes delivered messages, exactly once where the provider
allows it, at the providers' speed.

    engine.py      begin_delivery (snapshot in parts + plan), release of held rows, completion
    snapshot.py    the recipients: an INSERT … SELECT per part (policy "all" / "preferred")
    planner.py     pending rows → provider-sized batches (quiet hours → 'held')
    sender.py      one batch attempt; FCM/email "lanes" (one batch in flight per process),
                   LINE pools (several at once); lanes.py balances and registers them
    batches.py     claim with a lease, load, record, release (the crash-safety core)
    record.py      per-recipient results, endpoint pruning
    fallback.py    "preferred" policy: the next channel after a permanent failure
    ratelimit.py   GCRA rate limiter in Redis shared by all workers; 429 back-off
    retry.py       the written-down retry schedule
    reconcile.py   cron: the database is the record of what is left (Redis wipes, kills)
    control.py     progress, pause, resume, cancel (api.py is their HTTP face)
    tables.py      deliveries, delivery_batches, delivery_runs
    jobs.py        arq functions, cron, worker start-up
"""
