"""Documentation stays true: every setting is in the README, and the README's two commands
and CI agree."""

from __future__ import annotations

from pathlib import Path

from search.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [
        f"PIXSEEK_{name.upper()}"
        for name in Settings.model_fields
        if f"PIXSEEK_{name.upper()}" not in readme
    ]
    assert not missing, f"undocumented settings: {missing}"


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    commands = [line.split("#")[0].strip() for line in readme[:20] if line.startswith("make ")]
    assert commands[:2] == ["make run PHOTOS=~/Pictures", "make test"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nmake test\n" in ci


def test_compose_file_services_share_data_and_photos() -> None:
    import yaml

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"postgres", "api", "indexer", "indexer-gpu"} <= set(services)
    for name in ("api", "indexer", "indexer-gpu"):
        volumes = services[name]["volumes"]
        assert "pixseek-data:/data" in volumes and any(v.endswith(":/photos:ro") for v in volumes)
        assert services[name]["environment"]["PIXSEEK_DATABASE_URL"].startswith(
            "postgresql+psycopg://"
        )
        assert "pixseek db upgrade" in " ".join(services[name]["command"])
    assert (
        services["indexer-gpu"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"]
        == "nvidia"
    )
