"""The local archive: published through PublishingService, served to its owner only."""

from __future__ import annotations

from pathlib import Path

import pytest

from automation_scripts.base import Article, Image
from automation_scripts.publishing import LimitReached
from tests.conftest import AuthActions
from tests.publishing.conftest import png_bytes


@pytest.fixture
def app(make_app, tmp_path: Path):
    return make_app(TICKZEN_ARCHIVE_DIR=str(tmp_path / "archive"))


def _local_site(client, auth: AuthActions, **fields) -> dict:
    body = {"name": "Archive", "kind": "local", **fields}
    answer = client.post("/api/sites", json=body, headers=auth.headers())
    assert answer.status_code == 201, answer.get_json()
    return answer.get_json()


def _article(slug: str = "aapl-stock-analysis-2026-11-25") -> Article:
    return Article(
        slug=slug, title="AAPL <b>rises</b>",
        html=("<h2>Chart</h2><p><img src=\"{{image:aapl-chart.png}}\" alt=\"chart\"></p>"
              "<p>Ticker &lt;script&gt;</p><script>alert(1)</script>"),
        excerpt="Short", images=[
            Image("aapl-featured.png", png_bytes(), "Featured AAPL", role="featured"),
            Image("aapl-chart.png", png_bytes((10, 120, 10)), "AAPL chart")],
        categories=["Stocks"], tags=["AAPL"])


def test_owner_sees_the_article_and_images_others_get_404(app, client, auth, tmp_path):
    user_id = auth.signed_in("owner@example.com")
    site = _local_site(client, auth)
    publishing = app.extensions["tickzen"].publishing
    result = publishing.publish(user_id, site["id"], _article(), run_id="r1", kind="stock",
                                options={"status": "publish"})
    assert result.post_url == f"/sites/{site['id']}/posts/aapl-stock-analysis-2026-11-25"
    folder = tmp_path / "archive" / user_id / site["id"] / "aapl-stock-analysis-2026-11-25"
    assert (folder / "article.json").is_file() and (folder / "images" / "aapl-chart.png").is_file()

    page = client.get(result.post_url)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "AAPL &lt;b&gt;rises&lt;/b&gt;" in html and "<b>rises</b>" not in html
    assert "<script>alert(1)</script>" not in html
    chart_url = f"{result.post_url}/images/aapl-chart.png"
    assert f'src="{chart_url}"' in html and "{{image:" not in html
    image = client.get(chart_url)
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.data[:4] == b"\x89PNG"

    stranger = app.test_client()
    AuthActions(stranger).signed_in("stranger@example.com")
    assert stranger.get(result.post_url).status_code == 404
    assert stranger.get(chart_url).status_code == 404
    anonymous = app.test_client()
    assert anonymous.get(result.post_url).status_code == 302     # to the login page
    assert client.get(f"/sites/{site['id']}/posts/no-such-post").status_code == 404
    assert client.get(f"/sites/{site['id']}/posts/x/images/..%2Farticle.json"
                      ).status_code == 404

    # Exactly-once: the second publish returns the ledger entry, writes nothing new.
    again = publishing.publish(user_id, site["id"], _article(), run_id="r2", kind="stock",
                               options={})
    assert again.existed is True and again.post_url == result.post_url


def test_local_daily_limit_and_ledger_release(app, client, auth):
    user_id = auth.signed_in()
    site = _local_site(client, auth, daily_limit=1)
    publishing = app.extensions["tickzen"].publishing
    publishing.publish(user_id, site["id"], _article("one"), run_id="r", kind="stock",
                       options={})
    with pytest.raises(LimitReached):
        publishing.publish(user_id, site["id"], _article("two"), run_id="r", kind="stock",
                           options={})
    store = app.extensions["tickzen"].store
    assert store.get_post(user_id, site["id"], "two") is None
    assert store.get_post(user_id, site["id"], "one").status == "published"
    assert publishing.already_published(user_id, site["id"], "one") is not None
    assert publishing.already_published(user_id, site["id"], "two") is None
