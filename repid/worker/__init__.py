"""The worker: compiled actors (`actor`), routing to them (`dispatcher`) and the loop (`runner`).

Start it with `Repid.run_worker`; `Repid.create_runner` builds a `Runner` without running it.
"""
