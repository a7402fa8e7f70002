"""The whole-system load benchmark: a fresh hotline-qa on loopback (system), the virtual users' pure logic (plan),
staff sign-in and publishing (staff), the Locust users (locustfile, run as a subprocess), measuring (report)."""
