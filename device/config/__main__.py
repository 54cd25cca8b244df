"""`python -m walkcoach.device.config > systemd/config.example.toml` regenerates the example config."""

from walkcoach.device.config.config import main

main()
