"""`python -m tradowix_bot.cli` / `tradowix`: the owner's and partners' command line."""
