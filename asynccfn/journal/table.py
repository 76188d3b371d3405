"""Creating the journal table: keys, the stack index and TTL, from the models' schema."""

from __future__ import annotations

from .models import bind


def create_table(
    table: str, *, region: str | None = None, host: str | None = None, wait: bool = True
) -> None:
    """Create ``table`` (on-demand billing, the ``by-stack`` index) and enable TTL on
    ``expires_at``. Synchronous (pynamodb); call it off the event loop.

    Raises:
        pynamodb.exceptions.TableError: DynamoDB refused (e.g. the table exists).
    """
    models = bind(table, region, host)
    models.operation.create_table(billing_mode="PAY_PER_REQUEST", wait=wait)
    models.operation._get_connection().update_time_to_live("expires_at")


def table_exists(table: str, *, region: str | None = None, host: str | None = None) -> bool:
    """Whether ``table`` exists (synchronous)."""
    return bool(bind(table, region, host).operation.exists())
