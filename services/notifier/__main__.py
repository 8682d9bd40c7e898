"""``python -m services.notifier`` starts the notifier worker (port 6069 in `make run`)."""

from runtime.app import run_worker
from services.notifier.app import SERVICE, app, settings

if __name__ == "__main__":
    run_worker(app, settings, SERVICE)
