--- :checkhealth enclave — Neovim version, configuration and the server command here; Ollama,
--- the models, memory and the index come from `enclave doctor --json`, the one source of truth
--- (the plugin never talks to the model server itself).
local M = {}

local health = vim.health

--- How long `enclave doctor` may take before it is reported as hanging.
M.timeout_ms = 15000

--- The buffer being edited: :checkhealth shows its report in a scratch buffer of its own, which
--- makes the user's buffer the alternate one.
local function user_buffer()
  for _, buf in ipairs({ vim.api.nvim_get_current_buf(), vim.fn.bufnr('#') }) do
    if buf > 0 and vim.bo[buf].buftype == '' and vim.api.nvim_buf_get_name(buf) ~= '' then
      return buf
    end
  end
  return nil
end

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

--- True when `cmd` runs `python -m ...` without -P (or -I, which implies it): that puts the
--- working directory (the workspace) first on sys.path, so its files can shadow Enclave's.
local function python_m_without_p(cmd)
  local program = vim.fs.basename(cmd[1] or '')
  if not program:match('^python[%d.]*$') then
    return false
  end
  for i = 2, #cmd do
    if cmd[i] == '-P' or cmd[i] == '-I' then
      return false
    elseif cmd[i] == '-m' then
      return true
    end
  end
  return false
end

local function check_server(cfg, buf)
  health.start('Language server')
  local exe = cfg.cmd[1]
  if vim.fn.executable(exe) == 1 then
    local path = vim.fn.exepath(exe)
    if path == vim.fn.fnamemodify(exe, ':p') then -- cmd names the file itself: say it once
      health.ok('server command: ' .. path)
    else
      health.ok(('%s found: %s'):format(exe, path))
    end
  else
    health.error(('%s is not executable (cmd = %s)'):format(exe, vim.inspect(cfg.cmd)), {
      'install Enclave: `pip install -e .` in its repository (puts `enclave` in your environment)',
      'or point `cmd` in setup() at it, e.g. { "/path/to/venv/bin/enclave", "lsp" }',
    })
  end
  if python_m_without_p(cfg.cmd) then
    health.warn('cmd runs `python -m` without -P: files of the workspace can shadow Enclave', {
      'use { "python", "-P", "-m", "enclave", "lsp" } or the `enclave` script itself',
    })
  end
  local client = require('enclave').client(buf)
  if client then
    health.ok(('running for %s (client %d)'):format(client.root_dir or '?', client.id))
  else
    health.info('not running for the current buffer (it starts for files inside a git repository)')
  end
  return client
end

--- The doctor command for the server command `cmd`: its elements before a trailing 'lsp'
--- ({ 'enclave', 'lsp' } -> { 'enclave', 'doctor' }), or nil when `cmd` has no such form.
function M.doctor_cmd(cmd)
  if #cmd < 2 or cmd[#cmd] ~= 'lsp' then
    return nil
  end
  local out = vim.list_slice(cmd, 1, #cmd - 1)
  out[#out + 1] = 'doctor'
  return out
end

local function first_line(text)
  return vim.trim(text or ''):match('^[^\n]*')
end

--- Run `enclave doctor --json`; returns the decoded report, or nil, what went wrong and whether
--- the program is missing.
local function run_doctor(argv)
  if vim.fn.executable(argv[1]) == 0 then
    return nil, ('cannot run the doctor: %s is not executable'):format(argv[1]), true
  end
  local ok, proc = pcall(vim.system, argv, { text = true, timeout = M.timeout_ms })
  if not ok then
    return nil, ('cannot run %s: %s'):format(argv[1], tostring(proc))
  end
  local done = proc:wait()
  if done.code == 124 then
    return nil, ('`%s doctor` did not finish within %g s'):format(argv[1], M.timeout_ms / 1000)
  end
  local decoded, report =
    pcall(vim.json.decode, done.stdout or '', { luanil = { object = true, array = true } })
  if not decoded or type(report) ~= 'table' or type(report.checks) ~= 'table' then
    local why = first_line(done.stderr)
    if why == '' then
      why = ('exit code %d and no JSON on stdout'):format(done.code)
    end
    return nil, ('`%s doctor --json` gave no report: %s'):format(argv[1], why)
  end
  return report
end

--- The doctor's command line for `cfg`, or nil when `cmd` does not end with 'lsp'.
local function doctor_argv(cfg, buf)
  local argv = M.doctor_cmd(cfg.cmd)
  if not argv then
    return nil
  end
  local settings = require('enclave.config').as_object(cfg.settings or {})
  vim.list_extend(argv, { '--json', '--settings', vim.json.encode(settings) })
  local root = buf and vim.fs.root(buf, cfg.root_markers)
  if root then
    vim.list_extend(argv, { '--root', root })
  end
  return argv
end

--- One check of the doctor's report, with its fix as advice.
local function show_check(check)
  local message = tostring(check.message or check.name or '?')
  local advice = (type(check.fix) == 'string' and check.fix ~= '') and { check.fix } or nil
  if check.status == 'ok' then
    health.ok(message)
  elseif check.status == 'error' then
    health.error(message, advice)
  elseif check.status == 'skipped' then
    health.info(message .. ' (skipped)')
  else
    health.warn(message, advice)
  end
end

--- The report of `enclave doctor`, each of its checks shown; nil when it could not be had.
local function check_doctor(cfg, buf)
  health.start('enclave doctor')
  local argv = doctor_argv(cfg, buf)
  if not argv then
    health.warn(
      ('cmd = %s does not end with the "lsp" argument: cannot derive `doctor` from it'):format(
        vim.inspect(cfg.cmd, { newline = ' ', indent = '' })
      ),
      {
        'set cmd to { "/path/to/venv/bin/enclave", "lsp" }',
        'or to { "python", "-P", "-m", "enclave", "lsp" }',
        'or run `enclave doctor` in a terminal',
      }
    )
    return nil
  end
  local report, err, missing = run_doctor(argv)
  if not report then
    local doctor = table.concat(M.doctor_cmd(cfg.cmd), ' ')
    local advice = ('run `%s --json` in a terminal to see what it says'):format(doctor)
    if missing then
      advice = 'install Enclave (`pip install -e .` in its repository) or point `cmd` at it'
    end
    health.error(err, { advice })
    return nil
  end
  health.info(('Ollama host %s, version %s'):format(report.host or '?', report.version or '?'))
  for _, check in ipairs(report.checks) do
    show_check(check)
  end
  return report
end

local function check_models(report)
  health.start('Models')
  if #(report.models or {}) == 0 then
    health.info('no models reported (see enclave doctor above)')
    return
  end
  for _, m in ipairs(report.models) do
    local text = ('%s (%s): %s; capabilities: %s; fill-in-the-middle: %s'):format(
      m.name,
      table.concat(m.roles or {}, ', '),
      m.pulled and 'pulled' or 'not pulled',
      #(m.capabilities or {}) > 0 and table.concat(m.capabilities, ', ') or 'unknown',
      m.fim and 'yes' or 'no'
    )
    if m.pulled then
      health.ok(text)
    else
      health.info(text)
    end
  end
end

local function check_running_index(client)
  local status = client and require('enclave.status').get(client)
  if not status then
    return
  end
  local text = 'server: ' .. table.concat(require('enclave.status').describe(status), '; ')
  if status.state == 'ready' then
    health.ok(text)
  elseif status.state == 'indexing' then
    health.info(text)
  elseif status.state == 'degraded' then
    health.warn(text, status.fix and { status.fix } or nil)
  else
    health.error(text, status.fix and { status.fix } or nil)
  end
end

local function check_index(report, client)
  health.start('Index')
  check_running_index(client)
  local index = report and report.index
  if not index then
    health.info(report and 'no repository to check' or 'unknown (enclave doctor gave no report)')
    return
  end
  if not index.exists then
    health.info(('no index at %s yet'):format(index.db or '?'))
    return
  end
  local text = ('index at %s: %d files, %d chunks, %d symbols; semantic search %s'):format(
    index.db or index.root or '?',
    index.files or 0,
    index.chunks or 0,
    index.symbols or 0,
    index.semantic and 'on' or ('off (' .. tostring(index.semantic_reason or '?') .. ')')
  )
  health.ok(text)
end

function M.check()
  check_neovim()
  local cfg = check_config()
  local buf = user_buffer()
  local client = check_server(cfg, buf)
  local report = check_doctor(cfg, buf)
  if report then
    check_models(report)
  end
  check_index(report, client)
end

return M
