--- Enclave for Neovim: setup(), the language-server configuration and the entry points behind
--- the :Enclave* commands. The server is `enclave lsp` (docs/protocol.md); Neovim starts it through
--- vim.lsp.config/vim.lsp.enable for buffers inside a git repository.
local M = {}

M.name = 'enclave'
--- The resolved options of the last successful setup(), or nil before it.
M.config = nil

local function notify(msg, level)
  vim.notify('Enclave: ' .. msg, level or vim.log.levels.INFO)
end
M.notify = notify

local function install_hint(cmd)
  return (
    'cannot start the language server: %q is not executable. Install it with '
    .. '`pip install /path/to/enclave` (or `pip install -e .` in the Enclave repository) '
    .. 'and make sure it is on $PATH, or set `cmd` in require("enclave").setup()'
  ):format(cmd[1])
end

--- Root of the repository that holds `bufnr`, or nil when the buffer is not in one.
local function find_root(bufnr, markers)
  local name = vim.api.nvim_buf_get_name(bufnr)
  if name == '' or vim.bo[bufnr].buftype ~= '' then
    return nil
  end
  return vim.fs.root(bufnr, markers)
end

local function client_capabilities()
  local caps = vim.lsp.protocol.make_client_capabilities()
  caps.textDocument = caps.textDocument or {}
  caps.textDocument.inlineCompletion = caps.textDocument.inlineCompletion
    or { dynamicRegistration = false }
  return caps
end

local as_object = require('enclave.config').as_object

local function lsp_config(cfg)
  local settings = as_object(cfg.settings)
  return {
    cmd = cfg.cmd,
    filetypes = cfg.filetypes,
    root_dir = function(bufnr, on_dir)
      local root = find_root(bufnr, cfg.root_markers)
      if root then
        on_dir(root)
      end
    end,
    capabilities = client_capabilities(),
    init_options = settings,
    settings = { enclave = settings },
    handlers = {
      ['enclave/status'] = function(_, params, ctx)
        require('enclave.status').on_status(ctx.client_id, params)
      end,
      ['$/progress'] = function(err, params, ctx)
        if not require('enclave.answer').on_progress(params) then
          vim.lsp.handlers['$/progress'](err, params, ctx)
        end
      end,
    },
    on_attach = function(client, bufnr)
      M.last_exit = nil
      require('enclave.completion').attach(client, bufnr)
    end,
    on_exit = function(code, signal)
      -- kept for the statusline and :EnclaveStatus: why the server is not running
      M.last_exit = (code ~= 0 or (signal or 0) ~= 0) and { code = code, signal = signal } or nil
    end,
  }
end

--- Configure and start Enclave. Safe to call again: later calls replace the options, update
--- running servers' settings and re-map keys. Returns true, or false after reporting bad options.
--- @param opts table|nil see :help enclave-setup
--- @return boolean
function M.setup(opts)
  local cfg, err = require('enclave.config').resolve(opts)
  if not cfg then
    notify('invalid setup(): ' .. err, vim.log.levels.ERROR)
    return false
  end
  local previous = M.config
  M.config = cfg
  require('enclave.completion').configure(cfg.completion)

  if vim.fn.executable(cfg.cmd[1]) == 0 then
    notify(install_hint(cfg.cmd), vim.log.levels.ERROR)
  end
  -- Assign rather than call vim.lsp.config(): a call deep-merges lists with the previous setup's.
  vim.lsp.config[M.name] = lsp_config(cfg)
  vim.lsp.enable(M.name)

  if previous and not vim.deep_equal(previous.settings, cfg.settings) then
    for _, client in ipairs(vim.lsp.get_clients({ name = M.name })) do
      client.settings = { enclave = as_object(cfg.settings) }
      client:notify('workspace/didChangeConfiguration', { settings = client.settings })
    end
  end
  return true
end

--- Why the server is not running although it should be (setup() done and `bufnr`, default the
--- current buffer, is a file of a repository it serves): its program is missing, or it exited.
--- nil when it runs, or has no reason to run for `bufnr`.
--- @return string|nil
function M.not_running(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local cfg = M.config
  if not cfg or M.client(bufnr) or not find_root(bufnr, cfg.root_markers) then
    return nil
  end
  if cfg.filetypes and not vim.tbl_contains(cfg.filetypes, vim.bo[bufnr].filetype) then
    return nil
  end
  if vim.fn.executable(cfg.cmd[1]) == 0 then
    return install_hint(cfg.cmd)
  end
  local exit = M.last_exit
  if exit then
    local how = (exit.signal or 0) ~= 0 and ('signal %d'):format(exit.signal)
      or ('code %d'):format(exit.code)
    return ('the language server (%s) exited with %s: its log is in :LspLog'):format(
      table.concat(cfg.cmd, ' '),
      how
    )
  end
  return 'the language server is not running (`:edit` starts it again)'
end

--- The Enclave client attached to `bufnr` (default: current), or the first running one.
--- @return vim.lsp.Client|nil
function M.client(bufnr)
  local clients = vim.lsp.get_clients({ name = M.name, bufnr = bufnr or 0 })
  if #clients == 0 then
    clients = vim.lsp.get_clients({ name = M.name })
  end
  return clients[1]
end

local function need_client()
  local client = M.client()
  if client then
    return client
  end
  if not M.config then
    notify('call require("enclave").setup() first', vim.log.levels.ERROR)
  elseif vim.fn.executable(M.config.cmd[1]) == 0 then
    notify(install_hint(M.config.cmd), vim.log.levels.ERROR)
  else
    notify(
      'the language server is not running for this buffer (is it inside a git repository?)',
      vim.log.levels.ERROR
    )
  end
  return nil
end

--- LSP range covering lines `line1`..`line2` (1-based, inclusive) of the current buffer.
local function line_range(client, line1, line2)
  local last = vim.api.nvim_buf_get_lines(0, line2 - 1, line2, false)[1] or ''
  local enc = client.offset_encoding or 'utf-16'
  return {
    start = { line = line1 - 1, character = 0 },
    ['end'] = { line = line2 - 1, character = vim.str_utfindex(last, enc, #last, false) },
  }
end

--- Explain lines `line1`..`line2` (1-based), or the definition around the cursor when no range.
--- @param args {range: integer, line1: integer, line2: integer}|nil
function M.explain(args)
  local client = need_client()
  if not client then
    return
  end
  if not vim.lsp.buf_is_attached(0, client.id) then
    notify('explain works on a file of the repository: open one first', vim.log.levels.ERROR)
    return
  end
  local params = { textDocument = vim.lsp.util.make_text_document_params(0) }
  local title
  if args and args.range and args.range > 0 then
    params.range = line_range(client, args.line1, args.line2)
    title = ('Explain %s:%d-%d'):format(vim.fn.expand('%:.'), args.line1, args.line2)
  else
    local pos = vim.lsp.util.make_position_params(0, client.offset_encoding).position
    params.range = { start = pos, ['end'] = pos }
    title = ('Explain %s:%d'):format(vim.fn.expand('%:.'), pos.line + 1)
  end
  return require('enclave.answer').request(client, 'enclave/explain', params, title)
end

--- Ask a question about the repository; with a range, the selected lines are sent as context.
--- @param args {args: string, range: integer, line1: integer, line2: integer}|nil
function M.ask(args)
  args = args or { args = '', range = 0 }
  local client = need_client()
  if not client then
    return
  end
  local function send(question)
    if question == nil or vim.trim(question) == '' then
      return
    end
    local params = { question = question }
    -- The current file (and the range) go along only when the server knows the buffer.
    if vim.lsp.buf_is_attached(0, client.id) then
      params.textDocument = vim.lsp.util.make_text_document_params(0)
      if args.range and args.range > 0 then
        params.range = line_range(client, args.line1, args.line2)
      end
    end
    return require('enclave.answer').request(client, 'enclave/ask', params, 'Ask: ' .. question)
  end
  if args.args and args.args ~= '' then
    return send(args.args)
  end
  vim.ui.input({ prompt = 'Ask Enclave: ' }, send)
end

--- Re-index the workspace (`full` rebuilds from scratch); reports the summary when done.
function M.reindex(full)
  local client = need_client()
  if not client then
    return
  end
  notify(full and 'rebuilding the index…' or 'updating the index…')
  client:request('workspace/executeCommand', {
    command = 'enclave.reindex',
    arguments = { { full = full and true or false } },
  }, function(err, result)
    if err then
      notify('re-index failed: ' .. (err.message or vim.inspect(err)), vim.log.levels.ERROR)
    else
      notify('index updated: ' .. require('enclave.status').reindex_summary(result))
    end
  end, 0)
end

--- Show the server state (:EnclaveStatus).
function M.show_status()
  require('enclave.status').show(M.client())
end

return M
