"""A registrar's session with InternetNZ's pyepp (PyPI), unmodified:
connect over TLS (pyepp trusts only the default store, so SSL_CERT_FILE
names the CA), log in, check a taken and a free name, log out. Prints one
line per step; exits non-zero on the first surprise.

    python pyepp_day.py HOST PORT CLID PASSWORD TAKEN FREE
"""
import sys

from pyepp import Domain, EppCommunicator


def main() -> int:
    host, port, user, password, taken, free = sys.argv[1:7]
    epp = EppCommunicator(host, port)
    epp.connect()
    login = epp.login(user, password)
    print(f"login {login.code}")
    checked = Domain(epp).check([taken, free])
    print(f"check {checked.code}")
    data = checked.result_data
    if data[taken]["avail"] or not data[free]["avail"]:
        print(f"unexpected availability: {data}")
        return 1
    print(f"{taken} taken, {free} free")
    bye = epp.logout()
    print(f"logout {bye.code}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
