"""The ``gcvideo`` command line: LightningCLI subcommands plus gcvideo's own tools."""
