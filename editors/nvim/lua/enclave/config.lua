--- Options of the Enclave plugin: defaults, merging with the user's options, and validation.
---
--- `resolve(opts)` is pure: it returns the merged options or `nil, message`, where the message
--- names the offending option, what was expected and what was given. The server's `settings` are
--- not checked here: the server checks them and reports a bad value or an unknown key by name.
local M = {}

--- The server's settings, generated from enclave/config.py (`python -m enclave.settings_schema`):
--- section -> camelCase key -> { type = JSON type, default = value }.
M.settings = require('enclave.settings')

M.defaults = {
  -- Command that starts the language server (stdio).
  cmd = { 'enclave', 'lsp' },
  -- Files whose presence marks the root of a repository; Enclave only starts inside one.
  root_markers = { '.git' },
  -- Filetypes to attach to; nil attaches to every buffer that has a filetype.
  filetypes = nil,
  -- Server settings (docs/protocol.md), sent as initializationOptions and workspace configuration.
  settings = {},
  completion = {
    -- Show inline suggestions (ghost text) while typing in insert mode.
    enabled = true,
    -- Wait this long after the last keystroke before asking the server (the server debounces too).
    debounce_ms = 60,
    -- Highlight group of the ghost text.
    hl_group = 'Comment',
    -- Insert-mode keys; set one to false to leave it unmapped. `accept` falls through to the
    -- key's normal meaning when no suggestion is shown.
    keys = { accept = '<Tab>', next = '<M-]>', prev = '<M-[>', dismiss = '<C-]>' },
  },
  answer = {
    -- Where explanations and answers appear: 'float' or 'split' (a split below the current window).
    layout = 'float',
    -- Size of the float as a fraction of the editor (or of the split's height).
    width = 0.8,
    height = 0.7,
    -- The model's thinking: 'fold' (shown folded), 'show' or 'hide'.
    thinking = 'fold',
    -- Also put the citations in the quickfix list.
    quickfix = true,
  },
}

local option_types = {
  cmd = 'string[]',
  root_markers = 'string[]',
  filetypes = 'string[]?',
  settings = 'table',
  completion = 'table',
  ['completion.enabled'] = 'boolean',
  ['completion.debounce_ms'] = 'integer',
  ['completion.hl_group'] = 'string',
  ['completion.keys'] = 'table',
  ['completion.keys.accept'] = 'key',
  ['completion.keys.next'] = 'key',
  ['completion.keys.prev'] = 'key',
  ['completion.keys.dismiss'] = 'key',
  answer = 'table',
  ['answer.layout'] = { 'float', 'split' },
  ['answer.width'] = 'fraction',
  ['answer.height'] = 'fraction',
  ['answer.thinking'] = { 'fold', 'show', 'hide' },
  ['answer.quickfix'] = 'boolean',
}

local function describe(value)
  if type(value) == 'string' then
    return ('string %q'):format(value)
  end
  return ('%s %s'):format(type(value), vim.inspect(value, { newline = ' ', indent = '' }))
end

local function is_string_list(v)
  if type(v) ~= 'table' or (next(v) ~= nil and not vim.islist(v)) then
    return false
  end
  for _, item in ipairs(v) do
    if type(item) ~= 'string' then
      return false
    end
  end
  return true
end

--- nil when `ok`, else the description of what was expected.
local function need(ok, expected)
  if ok then
    return nil
  end
  return expected
end

--- Check one value against a type spec; returns nil when fine, else what was expected.
local function check(spec, value)
  if type(spec) == 'table' then
    return need(
      vim.tbl_contains(spec, value),
      'one of ' .. table.concat(vim.tbl_map(vim.inspect, spec), ', ')
    )
  elseif spec == 'string[]?' then
    return need(value == nil or is_string_list(value), 'a list of strings or nil')
  elseif spec == 'string[]' then
    return need(is_string_list(value), 'a list of strings')
  elseif spec == 'integer' then
    local ok = type(value) == 'number' and value >= 0 and math.floor(value) == value
    return need(ok, 'a non-negative integer')
  elseif spec == 'fraction' then
    return need(type(value) == 'number' and value > 0 and value <= 1, 'a number in (0, 1]')
  elseif spec == 'key' then
    local ok = value == false or (type(value) == 'string' and value ~= '')
    return need(ok, 'a key such as "<Tab>", or false to leave it unmapped')
  end
  return need(type(value) == spec, 'a ' .. spec)
end

local function known_keys(prefix)
  local keys = {}
  for name in pairs(option_types) do
    local parent, leaf = name:match('^(.*)%.([^.]+)$')
    if (parent or '') == prefix then
      keys[#keys + 1] = leaf or name
    end
  end
  table.sort(keys)
  return keys
end

--- Walk the user's options (not the merged ones) so that unknown keys are caught too.
local function validate_options(opts, prefix)
  for key, value in pairs(opts) do
    local name = prefix == '' and tostring(key) or (prefix .. '.' .. tostring(key))
    local spec = option_types[name]
    if spec == nil then
      return ('unknown option %q (known options%s: %s)'):format(
        name,
        prefix == '' and '' or (' in ' .. prefix),
        table.concat(known_keys(prefix), ', ')
      )
    end
    local expected = check(spec, value)
    if expected then
      return ('option %q must be %s, got %s'):format(name, expected, describe(value))
    end
    if spec == 'table' and name ~= 'settings' then
      local err = validate_options(value, name)
      if err then
        return err
      end
    end
  end
  return nil
end

--- Merge `opts` over the defaults and validate.
--- @param opts table|nil
--- @return table|nil config, string|nil error
function M.resolve(opts)
  if opts == nil then
    opts = {}
  end
  if type(opts) ~= 'table' then
    return nil, ('setup() expects a table of options, got %s'):format(describe(opts))
  end
  local err = validate_options(opts, '')
  if err then
    return nil, err
  end
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace the default rather than merging index by index.
  for _, list in ipairs({ 'cmd', 'root_markers', 'filetypes' }) do
    if opts[list] ~= nil then
      merged[list] = vim.deepcopy(opts[list])
    end
  end
  if #merged.cmd == 0 then
    return nil, 'option "cmd" must name a program, e.g. { "enclave", "lsp" }'
  end
  return merged, nil
end

--- `value` as JSON: an empty table becomes the list or the object that `schema` (a node of
--- M.settings) names (Lua has one empty table for both, and encodes it as a list).
local function to_json(value, schema)
  if type(value) ~= 'table' or (schema and schema.type == 'array') then
    return value
  end
  if vim.islist(value) and next(value) ~= nil then
    return value
  end
  local out = vim.empty_dict()
  for k, v in pairs(value) do
    out[k] = to_json(v, schema and schema.type == nil and schema[k] or nil)
  end
  return out
end

--- The server's settings as the JSON the server reads (values as given).
function M.as_object(settings)
  return to_json(settings, M.settings)
end

return M
