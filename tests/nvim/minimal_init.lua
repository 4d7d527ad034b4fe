-- Minimal Neovim configuration for the plugin's tests: the plugin on the runtimepath, no swap
-- files, nothing else. Loaded with `nvim --headless --clean -u minimal_init.lua`.
local here = vim.fs.dirname(debug.getinfo(1, 'S').source:sub(2))
local root = vim.fs.normalize(vim.fs.joinpath(here, '..', '..'))
vim.opt.runtimepath:prepend(vim.fs.joinpath(root, 'editors', 'nvim'))
vim.opt.swapfile = false
vim.opt.shortmess:append('I')
vim.o.columns, vim.o.lines = 120, 40

-- Record notifications so tests can read the messages a user would see.
_G.enclave_test_messages = {}
vim.notify = function(msg, level)
  table.insert(
    _G.enclave_test_messages,
    { msg = tostring(msg), level = level or vim.log.levels.INFO }
  )
end
