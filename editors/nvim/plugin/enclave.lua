--- User commands of the Enclave plugin. Nothing starts until require("enclave").setup() is called.
if vim.g.loaded_enclave then
  return
end
vim.g.loaded_enclave = true

local function enclave()
  return require('enclave')
end

vim.api.nvim_create_user_command(
  'EnclaveExplain',
  function(args)
    enclave().explain(args)
  end,
  { range = true, desc = 'Enclave: explain the selected lines (or the definition at the cursor)' }
)

vim.api.nvim_create_user_command('EnclaveAsk', function(args)
  enclave().ask(args)
end, { nargs = '*', range = true, desc = 'Enclave: ask a question about the repository' })

vim.api.nvim_create_user_command('EnclaveIndex', function(args)
  enclave().reindex(args.bang)
end, { bang = true, desc = 'Enclave: update the index (! rebuilds it from scratch)' })

vim.api.nvim_create_user_command('EnclaveStatus', function()
  enclave().show_status()
end, { desc = 'Enclave: show the server and index state' })
