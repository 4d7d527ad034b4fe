--- Server state from the `enclave/status` notification: kept per client, shown by :EnclaveStatus,
--- offered to statuslines (`require("enclave.status").statusline()`), and announced with the
--- `User EnclaveStatus` autocommand (data = the notification's params).
local M = {}

--- Last `enclave/status` params by client id.
M.by_client = {} ---@type table<integer, table>

function M.on_status(client_id, params)
  M.by_client[client_id] = params
  vim.api.nvim_exec_autocmds('User', {
    pattern = 'EnclaveStatus',
    modeline = false,
    data = { client_id = client_id, status = params },
  })
end

--- The last status of `client` (or of the current buffer's Enclave client).
function M.get(client)
  client = client or require('enclave').client()
  return client and M.by_client[client.id] or nil
end

local function count(v)
  return type(v) == 'number' and tostring(v) or '?'
end

--- "120 files, 950 chunks, 700 symbols" for a status (or any table with those counts).
function M.summary_of(s)
  if type(s) ~= 'table' then
    return vim.inspect(s)
  end
  local parts = {}
  for _, key in ipairs({ 'files', 'chunks', 'symbols' }) do
    if s[key] ~= nil then
      parts[#parts + 1] = count(s[key]) .. ' ' .. key
    end
  end
  return #parts > 0 and table.concat(parts, ', ') or vim.inspect(s, { newline = ' ', indent = '' })
end

--- One line per repository for the result of `enclave.reindex` ({roots = [summary]}).
function M.reindex_summary(result)
  if type(result) ~= 'table' or type(result.roots) ~= 'table' then
    return M.summary_of(result)
  end
  local lines = {}
  for _, r in ipairs(result.roots) do
    local name = vim.fn.fnamemodify(tostring(r.root or '?'), ':t')
    if r.error then
      lines[#lines + 1] = ('%s: failed: %s'):format(name, r.error)
    else
      local text = ('%s: %s files (%s re-indexed, %s deleted), %s chunks in %.1f s'):format(
        name,
        count(r.files_seen),
        count(r.files_indexed),
        count(r.files_deleted),
        count(r.chunks_total),
        tonumber(r.seconds) or 0
      )
      if r.cancelled then
        text = text .. ' (cancelled)'
      end
      if type(r.errors) == 'table' and #r.errors > 0 then
        text = text .. ('; %d file(s) failed: %s'):format(#r.errors, r.errors[1])
      end
      if r.semantic == false and r.semantic_reason and r.semantic_reason ~= '' then
        text = text .. '; semantic search off: ' .. r.semantic_reason
      end
      lines[#lines + 1] = text
    end
  end
  return table.concat(lines, '\n')
end

--- Lines describing a status for people (used by :EnclaveStatus and :checkhealth).
function M.describe(s)
  local lines = { ('state: %s'):format(s.state or '?') }
  if s.root then
    lines[#lines + 1] = 'repository: ' .. s.root
  end
  lines[#lines + 1] = 'index: ' .. M.summary_of(s)
  if s.semantic ~= nil then
    lines[#lines + 1] = 'semantic search: '
      .. (
        s.semantic and 'on'
        or ('off' .. (s.semanticReason and (' (' .. s.semanticReason .. ')') or ''))
      )
  end
  if s.chatModel or s.completionModel then
    lines[#lines + 1] = ('models: chat %s, completion %s'):format(
      s.chatModel or '?',
      s.completionModel or s.chatModel or '?'
    )
  end
  -- a team's fleet: each model server and its state (up, down, due)
  if type(s.modelHosts) == 'table' and #s.modelHosts > 1 then
    for _, h in ipairs(s.modelHosts) do
      local err = (type(h.error) == 'string' and h.error ~= '') and (' (' .. h.error .. ')') or ''
      lines[#lines + 1] = ('model server %s: %s%s'):format(h.host or '?', h.state or '?', err)
    end
  end
  if s.message and s.message ~= '' then
    lines[#lines + 1] = 'problem: ' .. s.message
  end
  if s.fix and s.fix ~= '' then
    lines[#lines + 1] = 'fix: ' .. s.fix
  end
  return lines
end

--- True while the client has work-done progress open (the server reports indexing that way).
local function busy(client)
  return next(client.progress.pending or {}) ~= nil
end

-- Highlights of the statusline text (opts.highlight): the server cannot run, or is degraded.
local function define_highlights()
  vim.api.nvim_set_hl(0, 'EnclaveStatusError', { link = 'ErrorMsg', default = true })
  vim.api.nvim_set_hl(0, 'EnclaveStatusWarn', { link = 'WarningMsg', default = true })
end
define_highlights()
vim.api.nvim_create_autocmd('ColorScheme', {
  group = vim.api.nvim_create_augroup('enclave.status', { clear = true }),
  callback = define_highlights,
})

local function painted(text, group, opts)
  if group and opts and opts.highlight then
    return ('%%#%s#%s%%*'):format(group, text)
  end
  return text
end

--- Short text for a statusline: "Enclave: ready", "Enclave: indexing…", "Enclave: not running"
--- when the server should run for this buffer and cannot (its program is missing or it exited;
--- :EnclaveStatus says why), "" when it has no reason to run. With `{ highlight = true }` the
--- problem states carry their highlight (EnclaveStatusError, EnclaveStatusWarn) for 'statusline'.
--- @param opts {highlight: boolean}|nil
function M.statusline(opts)
  local enclave = require('enclave')
  local client = enclave.client()
  if not client then
    return enclave.not_running() and painted('Enclave: not running', 'EnclaveStatusError', opts)
      or ''
  end
  local s = M.by_client[client.id]
  if busy(client) then
    return 'Enclave: indexing…'
  end
  local state = s and s.state or 'starting'
  local group = ({ error = 'EnclaveStatusError', degraded = 'EnclaveStatusWarn' })[state]
  return painted('Enclave: ' .. state, group, opts)
end

--- :EnclaveStatus
function M.show(client)
  local enclave = require('enclave')
  if not client then
    local why = enclave.not_running()
    if why then
      enclave.notify('not running: ' .. why, vim.log.levels.ERROR)
    else
      enclave.notify('not running for this buffer (open a file inside a git repository)')
    end
    return
  end
  local s = M.by_client[client.id]
  local lines = s and M.describe(s) or { 'state: starting (no status from the server yet)' }
  table.insert(
    lines,
    1,
    ('server: %s (client %d)'):format(table.concat(client.config.cmd, ' '), client.id)
  )
  local level = vim.log.levels.INFO
  if s and (s.state == 'degraded' or s.state == 'error') then
    level = s.state == 'error' and vim.log.levels.ERROR or vim.log.levels.WARN
  end
  enclave.notify(table.concat(lines, '\n'), level)
end

return M
