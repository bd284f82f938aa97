"""Countries on by default: with no [geo] database the gatekeeper uses the
country database installed on this machine (Debian's geoip-database, which
scripts/install-deps.sh installs, or a .mmdb from geoipupdate), so the
seed's rule (US CA GB AU NZ IE NL) holds on a fresh install. Clients with
public addresses arrive through a trusted proxy (X-Forwarded-For), the
way a real deployment behind a load balancer sees them; loopback stays
exempt, so `make run` works."""
import datetime
import os
import re
import time

import pytest

from test_policy_live import row, v1

# the order the gatekeeper looks in (GK_GEO_DIRS, GK_GEO_NAMES)
DIRS = ["/var/lib/GeoIP", "/usr/share/GeoIP"]
NAMES = ["GeoIP2-Country.mmdb", "GeoLite2-Country.mmdb",
         "dbip-country-lite.mmdb", "dbip-country.mmdb", "GeoIP2-City.mmdb",
         "GeoLite2-City.mmdb", "dbip-city-lite.mmdb", "GeoIP.dat"]


def installed_db():
    for n in NAMES:
        for d in DIRS:
            p = os.path.join(d, n)
            if os.access(p, os.R_OK):
                return p
    return None


@pytest.fixture
def default_gk(gk_factory):
    db = installed_db()
    assert db is not None, ("no country database installed: "
                            "scripts/install-deps.sh brings geoip-database")
    g = gk_factory(geo__database=None, acl__ip_allow="0.0.0.0/0, ::/0",
                   acl__trusted_proxies="127.0.0.1/32")
    g.db = db
    return g


def xff(ip):
    return [("X-Forwarded-For", ip)]


def test_check_config_shows_the_installed_database(default_gk):
    p = default_gk.run("check-config")
    assert "\ndatabase = %s\n" % default_gk.db in p.stdout
    m = re.search(r"# policy: countries from (\S+) \(([^,]+), built "
                  r"(\d{4}-\d\d-\d\d)T", p.stdout)
    assert m, p.stdout
    assert m.group(1) == default_gk.db
    assert m.group(2) == ("GeoIP legacy" if default_gk.db.endswith(".dat")
                          else "MaxMind DB")
    built = datetime.datetime.strptime(m.group(3), "%Y-%m-%d").replace(
        tzinfo=datetime.timezone.utc).timestamp()
    assert 2010 <= int(m.group(3)[:4]) <= time.gmtime().tm_year
    for op in ("get", "list", "put"):
        assert "# policy: countries %s: AU CA GB IE NL NZ US\n" % op in p.stdout
    stale = "more than 60 days old" in p.stdout
    assert stale == (time.time() - built > 60 * 86400), p.stdout
    assert "country checks are off" not in p.stdout


def test_default_countries_are_enforced(default_gk):
    g = default_gk.start()
    # the seed's countries pass
    for ip, cc in (("8.8.8.8", "US"), ("81.2.69.160", "GB"),
                   ("1.1.1.1", "AU")):
        st, body, h = v1(g, "127.0.0.1", headers=xff(ip))
        assert st == 302, (ip, body)
        assert row(g, h)["country"] == cc
    # others are refused, and the audit says why
    for ip, cc in (("77.88.8.8", "RU"), ("202.108.22.5", "CN")):
        st, body, h = v1(g, "127.0.0.1", headers=xff(ip))
        assert st == 403, (ip, body)
        r = row(g, h)
        assert (r["country"], r["decision"]) == (cc, "deny")
        assert r["message"] == "Forbidden: ACL (country %s)" % cc
    # loopback and private ranges are exempt: the IP lists decide
    for ip in ("127.0.0.1", "10.1.2.3", "192.168.1.9"):
        st, body, h = v1(g, "127.0.0.1", headers=xff(ip))
        assert st == 302, (ip, body)
        assert row(g, h)["country"] is None
    # a public address the database does not place: unknown = deny
    st, body, h = v1(g, "127.0.0.1", headers=xff("192.0.2.10"))
    assert st == 403
    assert row(g, h)["message"] == "Forbidden: ACL (country unknown)"


def test_default_countries_ipv6(default_gk):
    # Debian's geoip-database ships GeoIPv6.dat beside GeoIP.dat
    assert not default_gk.db.endswith(".dat") or os.path.exists(
        os.path.join(os.path.dirname(default_gk.db), "GeoIPv6.dat")), \
        "no GeoIPv6.dat beside %s: install geoip-database (make deps)" % \
        default_gk.db
    g = default_gk.start()
    st, body, h = v1(g, "127.0.0.1", headers=xff("2001:4860:4860::8888"))
    assert st == 302, body
    assert row(g, h)["country"] == "US"
    st, body, h = v1(g, "127.0.0.1", headers=xff("2a02:6b8::2:242"))
    assert st == 403, body
    assert row(g, h)["country"] == "RU"


def test_off_turns_countries_off(gk_factory):
    g = gk_factory(geo__database="off")
    p = g.run("check-config")
    assert "\ndatabase = off\n" in p.stdout
    assert "warning: no [geo] database: country checks are off" in p.stdout


def test_make_run_defaults_serve_loopback(gk_factory):
    """The embedded defaults (loopback allow list) with the database on:
    a local client is served."""
    g = gk_factory(geo__database=None).start()
    st, body, h = v1(g, "127.0.0.1")
    assert st == 302, body
    log = open(g.log).read()
    assert "country checks are off" not in log
