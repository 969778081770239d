pytest_plugins = ["tests.plugins.servers", "tests.plugins.gateway_server"]
