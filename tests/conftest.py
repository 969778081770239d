pytest_plugins = [
    "tests.plugins.servers",
    "tests.plugins.schema",
    "tests.plugins.gateway_server",
    "tests.plugins.livekit_server",
]
