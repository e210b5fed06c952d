"""A small order-processing worker, standard library only, that knows nothing of faultlens.

Run it under ``opentelemetry-instrument`` to see its failures without changing a
line (see ``examples/README.md``)::

    cd examples && FAULTLENS_INSTRUMENT='order_worker.jobs:*,order_worker.inventory:Inventory.*' \\
        OTEL_TRACES_EXPORTER=console opentelemetry-instrument python -m order_worker
"""
