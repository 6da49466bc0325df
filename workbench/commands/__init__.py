"""CLI command modules, one per `medvision` command or group; workbench/cli.py lists them."""
