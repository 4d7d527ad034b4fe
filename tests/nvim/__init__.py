"""Tests of the Neovim plugin (editors/nvim) in a real headless Neovim."""
