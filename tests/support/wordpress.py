"""A real WordPress 6.x (Debian packages) for the tests: MariaDB + PHP's built-in server.

Use the session fixture ``wordpress`` -> ``WordPressServer``::

    def test_x(wordpress):
        wordpress.base_url, wordpress.admin_user, wordpress.admin_app_password
        wordpress.contributor_user, wordpress.contributor_app_password
        wordpress.list_posts(slug="aapl-...")      # every status, as the admin

Everything lives in a private temporary folder: a MariaDB datadir (``mariadbd`` on a free
127.0.0.1 port and a socket), ``wp-content`` (uploads), the router script. The Debian
``wp-config.php`` picks ``/etc/wordpress/config-<name>.php`` from ``$_SERVER['WORDPRESS_CONFIG']``,
which our router sets to a name unique to this server (so two test sessions on one machine never
share a config, whatever host they are reached by); the file is removed at teardown. Processes
start in their own process group and are stopped by process id.

Missing packages: the tests skip with the reason, or fail when ``CI=true``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support import procs

WP_ROOT = Path("/usr/share/wordpress")
WP_ETC = Path("/etc/wordpress")
REQUIRED = ("mariadbd", "mariadb-install-db", "mariadb", "php")


free_port = procs.free_port


def missing_packages() -> list[str]:
    """What this machine lacks to run WordPress (empty when all is there)."""
    missing = [name for name in REQUIRED if not (shutil.which(name)
                                                 or Path("/usr/sbin", name).exists())]
    if not (WP_ROOT / "wp-load.php").exists():
        missing.append("wordpress (/usr/share/wordpress)")
    return missing


def _which(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


@dataclass
class WordPressServer:
    """A running WordPress. ``base_url`` has no trailing slash."""

    base_url: str
    admin_user: str
    admin_password: str
    admin_app_password: str
    contributor_user: str
    contributor_app_password: str
    content_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def host_port(self) -> tuple[str, int]:
        hostport = self.base_url.split("://", 1)[1]
        host, port = hostport.rsplit(":", 1)
        return host, int(port)

    def api(self, route: str) -> str:
        return f"{self.base_url}/wp-json/wp/v2/{route.lstrip('/')}"

    @property
    def admin_auth(self) -> tuple[str, str]:
        return (self.admin_user, self.admin_app_password)

    def get(self, route: str, **params: Any) -> Any:
        """GET a REST route as the admin (context=edit) and return the JSON."""
        params.setdefault("context", "edit")
        resp = requests.get(self.api(route), params=params, auth=self.admin_auth, timeout=30)
        resp.raise_for_status()
        return resp.json()

    def list_posts(self, **params: Any) -> list[dict[str, Any]]:
        """Posts in every status (``status=any``), newest first; filters as REST params."""
        params.setdefault("status", "any")
        params.setdefault("per_page", 100)
        return self.get("posts", **params)

    def term_names(self, taxonomy: str, ids: list[int]) -> list[str]:
        """Names of categories/tags by id (``taxonomy``: "categories" | "tags")."""
        if not ids:
            return []
        terms = self.get(taxonomy, include=",".join(map(str, ids)), per_page=100)
        return sorted(t["name"] for t in terms)

    def delete_all_posts(self) -> None:
        """Remove every post (any status) for test isolation."""
        for post in self.list_posts():
            requests.delete(self.api(f"posts/{post['id']}"), params={"force": "true"},
                            auth=self.admin_auth, timeout=30)


# ---------------------------------------------------------------------------------------------


_ROUTER = """<?php
// TickZen test router for `php -S`: static files as they are, uploads from WP_CONTENT_DIR,
// everything else to WordPress's index.php (pretty permalinks, /wp-json/).
$_SERVER['WORDPRESS_CONFIG'] = %(config_name)s;
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$content = %(content_dir)s;
if (strpos($path, '/wp-content/uploads/') === 0) {
    $file = realpath($content . substr($path, strlen('/wp-content')));
    if ($file !== false && strpos($file, $content . '/uploads/') === 0 && is_file($file)) {
        header('Content-Type: ' . mime_content_type($file));
        header('Content-Length: ' . filesize($file));
        readfile($file);
        return true;
    }
    http_response_code(404);
    return true;
}
if ($path !== '/' && file_exists(__WPROOT__ . $path) && !is_dir(__WPROOT__ . $path)) {
    return false;
}
chdir(__WPROOT__);
$_SERVER['SCRIPT_NAME'] = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = __WPROOT__ . '/index.php';
$_SERVER['PHP_SELF'] = '/index.php';
require __WPROOT__ . '/index.php';
"""

_CONFIG = """<?php
// Written by tests/support/wordpress.py; removed at teardown.
define('DB_NAME', 'wordpress');
define('DB_USER', 'root');
define('DB_PASSWORD', '');
define('DB_HOST', %(db_host)s);
define('WP_HOME', %(base_url)s);
define('WP_SITEURL', %(base_url)s);
define('WP_CONTENT_DIR', %(content_dir)s);
define('WP_CONTENT_URL', %(content_url)s);
define('WP_ENVIRONMENT_TYPE', 'local');
define('DISABLE_WP_CRON', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('FS_METHOD', 'direct');
%(salts)s
"""

_INSTALL = """<?php
$_SERVER['WORDPRESS_CONFIG'] = %(config_name)s;
$_SERVER['HTTP_HOST'] = %(host)s;
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
define('WP_INSTALLING', true);
require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
wp_install('TickZen Test', %(admin)s, 'admin@example.test', false, '', %(admin_pw)s);
update_option('permalink_structure', '/%%postname%%/');
flush_rewrite_rules(true);
$cid = wp_create_user(%(contrib)s, %(contrib_pw)s, 'contrib@example.test');
$u = new WP_User($cid);
$u->set_role('contributor');
$a = WP_Application_Passwords::create_new_application_password(1, ['name' => 'tickzen']);
$c = WP_Application_Passwords::create_new_application_password($cid, ['name' => 'tickzen']);
echo json_encode(['admin' => $a[0], 'contributor' => $c[0]]);
"""


def _php(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class WordPressProcesses:
    """Starts MariaDB and WordPress under ``root`` and stops them by pid."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen[bytes]] = []
        self.config_name = f"tickzen-test-{os.getpid()}-{secrets.token_hex(4)}"
        self.config_file = WP_ETC / f"config-{self.config_name}.php"

    def _spawn(self, args: list[str], log: Path, env: dict[str, str] | None = None
               ) -> subprocess.Popen[bytes]:
        proc = procs.spawn(args, f"wordpress-{Path(args[0]).name}", log, env=env)
        self.procs.append(proc)
        return proc

    def start(self) -> WordPressServer:
        root = self.root
        datadir, content = root / "mysql", root / "wp-content"
        sock = root / "mysqld.sock"
        content.mkdir(parents=True)
        (content / "uploads").mkdir()
        for sub in ("themes", "plugins", "languages"):
            (content / sub).symlink_to(WP_ROOT / "wp-content" / sub)

        subprocess.run([_which("mariadb-install-db"), f"--datadir={datadir}", "--user=root",
                        "--skip-test-db", "--auth-root-authentication-method=socket"],
                       check=True, capture_output=True, timeout=120)
        db_port = free_port()
        mysqld = self._spawn([
            _which("mariadbd"), "--no-defaults", f"--datadir={datadir}", f"--socket={sock}",
            f"--port={db_port}", "--bind-address=127.0.0.1", "--user=root", "--skip-log-bin",
            f"--pid-file={root / 'mysqld.pid'}", f"--log-error={root / 'mysqld.err'}",
            "--innodb-buffer-pool-size=32M", "--skip-name-resolve",
        ], root / "mysqld.out")
        _wait(lambda: subprocess.run(
            [_which("mariadb"), "--no-defaults", f"--socket={sock}", "-uroot", "-e", "SELECT 1"],
            capture_output=True).returncode == 0, 60, "MariaDB", mysqld, root / "mysqld.err")
        subprocess.run([_which("mariadb"), "--no-defaults", f"--socket={sock}", "-uroot", "-e",
                        "CREATE DATABASE wordpress CHARACTER SET utf8mb4"], check=True,
                       capture_output=True, timeout=30)

        port = free_port()
        base_url = f"http://127.0.0.1:{port}"
        salts = "\n".join(
            f"define('{name}', {_php(secrets.token_hex(32))});"
            for name in ("AUTH_KEY", "SECURE_AUTH_KEY", "LOGGED_IN_KEY", "NONCE_KEY",
                         "AUTH_SALT", "SECURE_AUTH_SALT", "LOGGED_IN_SALT", "NONCE_SALT"))
        self.config_file.write_text(_CONFIG % {
            "db_host": _php(f"localhost:{sock}"), "base_url": _php(base_url),
            "content_dir": _php(str(content)), "content_url": _php(base_url + "/wp-content"),
            "salts": salts})
        (root / "router.php").write_text(
            (_ROUTER % {"config_name": _php(self.config_name), "content_dir": _php(str(content))}
             ).replace("__WPROOT__", _php(str(WP_ROOT))))

        admin, admin_pw = "admin", secrets.token_urlsafe(12)
        contrib, contrib_pw = "contrib", secrets.token_urlsafe(12)
        (root / "install.php").write_text(_INSTALL % {
            "config_name": _php(self.config_name), "host": _php(f"127.0.0.1:{port}"),
            "admin": _php(admin), "admin_pw": _php(admin_pw), "contrib": _php(contrib),
            "contrib_pw": _php(contrib_pw)})
        out = subprocess.run([_which("php"), str(root / "install.php")], capture_output=True,
                             text=True, timeout=120, cwd=str(WP_ROOT))
        try:
            creds = json.loads(out.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError) as exc:
            raise RuntimeError(f"wp_install failed: {out.stdout[-2000:]} {out.stderr[-2000:]}"
                               ) from exc

        env = dict(os.environ, PHP_CLI_SERVER_WORKERS="4")
        php = self._spawn([_which("php"), "-S", f"127.0.0.1:{port}", "-t", str(WP_ROOT),
                           str(root / "router.php")], root / "php.log", env=env)
        server = WordPressServer(
            base_url=base_url, admin_user=admin, admin_password=admin_pw,
            admin_app_password=creds["admin"], contributor_user=contrib,
            contributor_app_password=creds["contributor"], content_dir=content,
            extra={"db_port": db_port, "root": str(root)})

        def ready() -> bool:
            try:
                return requests.get(base_url + "/wp-json/", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        _wait(ready, 60, "WordPress", php, root / "php.log")
        return server

    def stop(self) -> None:
        for proc in reversed(self.procs):
            procs.stop(proc, timeout=20)
        self.procs.clear()
        with contextlib.suppress(FileNotFoundError):
            self.config_file.unlink()


def _wait(check: Any, seconds: float, what: str, proc: subprocess.Popen[bytes], log: Path
          ) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
    raise RuntimeError(f"{what} did not start: {tail}")


@contextlib.contextmanager
def running_wordpress(root: Path) -> Iterator[WordPressServer]:
    """Start a WordPress under ``root`` (an empty folder) and stop it afterwards."""
    procs = WordPressProcesses(root)
    try:
        yield procs.start()
    finally:
        procs.stop()


@pytest.fixture(scope="session")
def wordpress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WordPressServer]:
    """A real WordPress for the session (skips without the packages; fails under CI=true)."""
    missing = missing_packages()
    writable = os.access(WP_ETC, os.W_OK)
    reason = (f"WordPress test server unavailable: missing {', '.join(missing)}"
              if missing else f"WordPress test server unavailable: {WP_ETC} is not writable")
    procs.need(not missing and writable,
               reason + " (apt: mariadb-server wordpress php-cli php-mysql php-curl php-xml "
               "php-mbstring)")
    with running_wordpress(tmp_path_factory.mktemp("wordpress")) as server:
        yield server
