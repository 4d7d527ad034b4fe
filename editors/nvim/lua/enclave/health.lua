--- :checkhealth enclave — Neovim version, configuration, the server command, Ollama (reachable,
--- version, models pulled) and the index of the current repository.
local M = {}

local health = vim.health

local function check_neovim()
  health.start('Neovim')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. tostring(vim.version()))
  else
    health.error('Neovim 0.11 or newer is required', { 'upgrade Neovim' })
  end
  if require('enclave.completion').native() then
    health.ok('inline completion: Neovim built-in (vim.lsp.inline_completion)')
  else
    health.ok('inline completion: ghost text drawn by Enclave (Neovim 0.11 has no built-in one)')
  end
end

local function check_config()
  health.start('Configuration')
  local cfg = require('enclave').config
  if cfg then
    health.ok(
      'setup() done; server settings: ' .. vim.inspect(cfg.settings, { newline = ' ', indent = '' })
    )
    return cfg
  end
  health.warn('require("enclave").setup() has not been called; checking with the defaults', {
    'add require("enclave").setup({}) to your configuration',
  })
  return require('enclave.config').defaults
end

local function check_server(cfg)
  health.start('Language server')
  local exe = cfg.cmd[1]
  if vim.fn.executable(exe) == 1 then
    health.ok(('%s found: %s'):format(exe, vim.fn.exepath(exe)))
  else
    health.error(('%s is not executable (cmd = %s)'):format(exe, vim.inspect(cfg.cmd)), {
      'install Enclave: `pip install -e .` in its repository (puts `enclave` in your environment)',
      'or point `cmd` in setup() at it, e.g. { "/path/to/venv/bin/enclave", "lsp" }',
    })
  end
  local client = require('enclave').client()
  if client then
    health.ok(('running for %s (client %d)'):format(client.root_dir or '?', client.id))
  else
    health.info('not running for the current buffer (it starts for files inside a git repository)')
  end
  return client
end

--- True when Ollama lists `name` ("deepseek-r1" matches "deepseek-r1:latest").
local function pulled(names, name)
  for _, have in ipairs(names) do
    if have == name or have == name .. ':latest' or name == have .. ':latest' then
      return true
    end
  end
  return false
end

local function check_ollama(cfg)
  health.start('Ollama')
  local http = require('enclave.http')
  local host = require('enclave.config').ollama_host(cfg)
  local version, err = http.get_json(host .. '/api/version', 3000)
  if not version then
    health.error(('Ollama is not reachable at %s: %s'):format(host, err), {
      'start it with `ollama serve`',
      'or set settings.ollama.host in setup() (or $OLLAMA_HOST) to where it runs',
    })
    return
  end
  health.ok(('Ollama %s reachable at %s'):format(tostring(version.version or '?'), host))
  local tags, terr = http.get_json(host .. '/api/tags', 3000)
  if not tags then
    health.error('cannot list the models: ' .. terr)
    return
  end
  local names = {}
  for _, m in ipairs(tags.models or {}) do
    names[#names + 1] = m.name or m.model
  end
  local s = cfg.settings or {}
  local chat = vim.tbl_get(s, 'ollama', 'chatModel') or 'deepseek-r1'
  local completion = vim.tbl_get(s, 'ollama', 'completionModel')
  if completion == nil or completion == '' then
    completion = chat
  end
  local wanted =
    { { 'chat model', chat, health.error }, { 'completion model', completion, health.error } }
  local provider = vim.tbl_get(s, 'embedding', 'provider') or 'ollama'
  if provider == 'ollama' then
    local embed = vim.tbl_get(s, 'embedding', 'model') or 'nomic-embed-text'
    wanted[#wanted + 1] = { 'embedding model', embed, health.warn }
  else
    health.info(('embeddings come from provider %q, not Ollama'):format(provider))
  end
  for _, w in ipairs(wanted) do
    if pulled(names, w[2]) then
      health.ok(('%s %s is pulled'):format(w[1], w[2]))
    else
      w[3](('%s %s is not pulled'):format(w[1], w[2]), { ('run `ollama pull %s`'):format(w[2]) })
    end
  end
end

local function check_index(cfg, client)
  health.start('Index')
  local status = client and require('enclave.status').get(client)
  if status then
    local text = table.concat(require('enclave.status').describe(status), '; ')
    if status.state == 'ready' then
      health.ok(text)
    elseif status.state == 'indexing' then
      health.info(text)
    elseif status.state == 'degraded' then
      health.warn(text, status.fix and { status.fix } or nil)
    else
      health.error(text, status.fix and { status.fix } or nil)
    end
    return
  end
  local root = vim.fs.root(0, cfg.root_markers)
  if not root then
    health.info('the current buffer is not inside a git repository')
    return
  end
  local db = vim.tbl_get(cfg.settings or {}, 'index', 'db')
  if db == nil or db == '' then
    db = vim.fs.joinpath(root, '.enclave')
  end
  if db:match('^%a+://') then
    health.info('index at ' .. db .. ' (remote; its state is known once the server runs)')
  elseif vim.fn.isdirectory(db) == 1 then
    health.ok('index found at ' .. db)
  else
    health.warn('no index at ' .. db .. ' yet', {
      'open a file of the repository (the server indexes it) or run :EnclaveIndex',
    })
  end
end

function M.check()
  check_neovim()
  local cfg = check_config()
  local client = check_server(cfg)
  check_ollama(cfg)
  check_index(cfg, client)
end

return M
