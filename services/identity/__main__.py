"""``python -m services.identity``: run the identity worker."""

from runtime.app import IDENTITY_GC, run_worker
from runtime.settings import load_settings
from services.identity.app import build_app
from services.identity.resolver import SERVICE
from services.identity.settings import IdentitySettings

if __name__ == "__main__":
    settings = load_settings()
    run_worker(build_app(settings, IdentitySettings()), settings, SERVICE, IDENTITY_GC)
