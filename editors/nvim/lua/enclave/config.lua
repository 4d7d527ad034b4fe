--- Options of the Enclave plugin: defaults, merging with the user's options, and validation.
---
--- `resolve(opts)` is pure: it returns the merged options or `nil, message`, where the message
--- names the offending option, what was expected and what was given.
local M = {}

--- Server settings known to the language server (docs/protocol.md), by section and camelCase key.
--- Values name the Lua type expected; "integer" and "string[]" are checked more closely.
M.setting_types = {
  ollama = {
    host = 'string',
    hosts = 'string[]',
    api = 'string',
    headers = 'table',
    openaiFim = 'boolean',
    chatModel = 'string',
    completionModel = 'string',
    keepAlive = 'string',
    connectTimeout = 'number',
    firstTokenTimeout = 'number',
    idleTimeout = 'number',
    totalTimeout = 'number',
  },
  embedding = {
    provider = 'string',
    url = 'string',
    model = 'string',
    batchSize = 'integer',
    concurrency = 'integer',
    timeout = 'number',
    queryTimeout = 'number',
  },
  completion = {
    enabled = 'boolean',
    cacheFriendly = 'boolean',
    debounceMs = 'integer',
    maxTokens = 'integer',
    numCtx = 'integer',
    contextTokens = 'integer',
    prefixTokens = 'integer',
    suffixTokens = 'integer',
  },
  chat = { numCtx = 'integer', maxTokens = 'integer', contextTokens = 'integer', think = 'boolean' },
  index = {
    db = 'string',
    shared = 'string',
    sharedCopy = 'boolean',
    retainMinutes = 'integer',
    lease = 'boolean',
    s3Endpoint = 'string',
    s3Region = 'string',
    maxFileBytes = 'integer',
    exclude = 'string[]',
  },
  trust = { neverSend = 'string[]', allowedHosts = 'string[]', redactPii = 'boolean' },
  audit = {
    enabled = 'boolean',
    path = 'string',
    includePrompts = 'boolean',
    maxBytes = 'integer',
    keep = 'integer',
  },
}

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

--- Check server settings against docs/protocol.md. Unknown keys are reported as warnings (a
--- newer server may know them); wrong types of known keys are errors.
--- @return string? error, string[] warnings
function M.validate_settings(settings)
  local warnings = {}
  for section, values in pairs(settings) do
    local types = M.setting_types[section]
    if types == nil then
      warnings[#warnings + 1] = ('settings.%s is not a setting this plugin knows'):format(section)
    elseif type(values) ~= 'table' or vim.islist(values) and next(values) ~= nil then
      return ('option "settings.%s" must be a table, got %s'):format(section, describe(values)),
        warnings
    else
      for key, value in pairs(values) do
        local name = ('settings.%s.%s'):format(section, key)
        local spec = types[key]
        if spec == nil then
          warnings[#warnings + 1] = name .. ' is not a setting this plugin knows'
        else
          local expected = check(spec, value)
          if expected then
            return ('option %q must be %s, got %s'):format(name, expected, describe(value)),
              warnings
          end
        end
      end
    end
  end
  return nil, warnings
end

--- Merge `opts` over the defaults and validate.
--- @param opts table|nil
--- @return table|nil config, string|nil error, string[] warnings
function M.resolve(opts)
  if opts == nil then
    opts = {}
  end
  if type(opts) ~= 'table' then
    return nil, ('setup() expects a table of options, got %s'):format(describe(opts)), {}
  end
  local err = validate_options(opts, '')
  if err then
    return nil, err, {}
  end
  local warnings
  err, warnings = M.validate_settings(opts.settings or {})
  if err then
    return nil, err, warnings
  end
  local merged = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts)
  -- Lists replace the default rather than merging index by index.
  for _, list in ipairs({ 'cmd', 'root_markers', 'filetypes' }) do
    if opts[list] ~= nil then
      merged[list] = vim.deepcopy(opts[list])
    end
  end
  if #merged.cmd == 0 then
    return nil, 'option "cmd" must name a program, e.g. { "enclave", "lsp" }', warnings
  end
  return merged, nil, warnings
end

--- Settings as JSON objects: empty tables would otherwise be encoded as JSON arrays.
function M.as_object(value)
  if type(value) ~= 'table' or (vim.islist(value) and next(value) ~= nil) then
    return value
  end
  local out = vim.empty_dict()
  for k, v in pairs(value) do
    out[k] = M.as_object(v)
  end
  return out
end

return M
