--- Inline completion (ghost text) from the server's textDocument/inlineCompletion.
---
--- Neovim 0.12+ has it built in (vim.lsp.inline_completion) and is used when present. On 0.11 the
--- suggestion is drawn with an extmark: the first line as inline virtual text at the cursor, the
--- rest as virtual lines. Keys (buffer-local, insert mode) accept, cycle and dismiss it.
local M = {}

local api = vim.api
M.ns = api.nvim_create_namespace('enclave.completion')

local TRIGGER_INVOKED, TRIGGER_AUTOMATIC = 1, 2

local opts = vim.deepcopy(require('enclave.config').defaults.completion)

--- What is on screen (or being fetched). Only one suggestion exists at a time, in one buffer.
local state = {
  bufnr = nil, ---@type integer?
  client_id = nil, ---@type integer?
  pos = nil, ---@type integer[]? cursor (row 0-based, col byte 0-based) the items belong to
  items = {}, ---@type table[]
  index = 1,
  request = nil, ---@type {client: vim.lsp.Client, id: integer}?
  timer = nil, ---@type uv.uv_timer_t?
  -- The buffer's changedtick right after an accepted suggestion was inserted: that change is
  -- ours, not the user's, and asks for nothing (the model would be busy with a request nobody
  -- waits for while the user types the next key).
  accepted = nil, ---@type {bufnr: integer, tick: integer}?
}

--- True when Neovim draws inline completions itself (0.12+).
function M.native()
  return vim.lsp.inline_completion ~= nil and type(vim.lsp.inline_completion.enable) == 'function'
end

function M.configure(copts)
  opts = vim.deepcopy(copts)
end

local function cancel_request()
  if state.request then
    pcall(function()
      state.request.client:cancel_request(state.request.id)
    end)
    state.request = nil
  end
  if state.timer then
    state.timer:stop()
  end
end

--- Remove the ghost text and forget the suggestion.
function M.clear()
  if state.bufnr and api.nvim_buf_is_valid(state.bufnr) then
    api.nvim_buf_clear_namespace(state.bufnr, M.ns, 0, -1)
  end
  state.items, state.index, state.pos = {}, 1, nil
end

--- True when a suggestion is shown in the current buffer at the cursor.
function M.visible()
  if M.native() then
    return false
  end
  if state.pos == nil or state.bufnr ~= api.nvim_get_current_buf() or #state.items == 0 then
    return false
  end
  local cur = api.nvim_win_get_cursor(0)
  return cur[1] - 1 == state.pos[1] and cur[2] == state.pos[2]
end

local function item_text(item)
  local text = item.insertText
  if type(text) == 'table' then
    text = text.value
  end
  return type(text) == 'string' and text or ''
end

--- Byte column of an LSP position in `bufnr`.
local function byte_col(bufnr, position, encoding)
  local line = api.nvim_buf_get_lines(bufnr, position.line, position.line + 1, false)[1] or ''
  return vim.str_byteindex(line, encoding, position.character, false)
end

--- The text to insert and the span it replaces (0-based rows, byte cols), for the current item.
--- Returns nil when the item no longer fits what is typed.
local function current_edit()
  local item = state.items[state.index]
  local client = vim.lsp.get_client_by_id(state.client_id or -1)
  if not item or not client then
    return nil
  end
  local text = item_text(item)
  local row, col = state.pos[1], state.pos[2]
  local srow, scol, erow, ecol = row, col, row, col
  if type(item.range) == 'table' then
    local enc = client.offset_encoding or 'utf-16'
    srow, erow = item.range.start.line, item.range['end'].line
    scol = byte_col(state.bufnr, item.range.start, enc)
    ecol = byte_col(state.bufnr, item.range['end'], enc)
  end
  -- Text the range covers before the cursor was already typed: show only what follows it.
  local shown = text
  if srow == row and scol < col then
    local line = api.nvim_buf_get_lines(state.bufnr, row, row + 1, false)[1] or ''
    local typed = line:sub(scol + 1, col)
    if text:sub(1, #typed) ~= typed then
      return nil
    end
    shown = text:sub(#typed + 1)
  end
  return { text = text, shown = shown, srow = srow, scol = scol, erow = erow, ecol = ecol }
end

local function render()
  api.nvim_buf_clear_namespace(state.bufnr, M.ns, 0, -1)
  local edit = current_edit()
  if not edit or edit.shown == '' then
    return
  end
  local lines = vim.split(edit.shown, '\n', { plain = true })
  local extmark = {
    virt_text = { { lines[1], opts.hl_group } },
    virt_text_pos = 'inline',
    hl_mode = 'combine',
  }
  if #lines > 1 then
    extmark.virt_lines = {}
    for i = 2, #lines do
      extmark.virt_lines[#extmark.virt_lines + 1] = { { lines[i], opts.hl_group } }
    end
  end
  api.nvim_buf_set_extmark(state.bufnr, M.ns, state.pos[1], state.pos[2], extmark)
end

local function on_result(bufnr, pos, tick, err, result)
  state.request = nil
  if err then
    vim.notify_once('Enclave: completion failed: ' .. (err.message or ''), vim.log.levels.WARN)
    return
  end
  if not api.nvim_buf_is_valid(bufnr) or api.nvim_buf_get_changedtick(bufnr) ~= tick then
    return
  end
  local cur = api.nvim_win_get_cursor(0)
  if api.nvim_get_current_buf() ~= bufnr or cur[1] - 1 ~= pos[1] or cur[2] ~= pos[2] then
    return
  end
  local items = (result and (result.items or result)) or {}
  local usable = {}
  for _, item in ipairs(items) do
    if item_text(item) ~= '' then
      usable[#usable + 1] = item
    end
  end
  state.items, state.index, state.pos, state.bufnr = usable, 1, pos, bufnr
  if #usable > 0 then
    render()
  end
end

--- Ask the server for a suggestion at the cursor now (`invoked` = the user asked explicitly).
function M.trigger(invoked)
  local bufnr = api.nvim_get_current_buf()
  local client = require('enclave').client(bufnr)
  if not client or M.native() then
    return
  end
  cancel_request()
  M.clear()
  local cursor = api.nvim_win_get_cursor(0)
  local pos = { cursor[1] - 1, cursor[2] }
  local tick = api.nvim_buf_get_changedtick(bufnr)
  local params = vim.lsp.util.make_position_params(0, client.offset_encoding)
  params.context = { triggerKind = invoked and TRIGGER_INVOKED or TRIGGER_AUTOMATIC }
  state.bufnr, state.client_id = bufnr, client.id
  local ok, id = client:request('textDocument/inlineCompletion', params, function(err, result)
    on_result(bufnr, pos, tick, err, result)
  end, bufnr)
  if ok and id then
    state.request = { client = client, id = id }
  end
end

local function schedule_trigger(args)
  cancel_request()
  M.clear()
  local accepted = state.accepted
  state.accepted = nil
  if
    accepted
    and accepted.bufnr == args.buf
    and accepted.tick == api.nvim_buf_get_changedtick(args.buf)
  then
    return -- the insertion of an accepted suggestion: wait for the user to type
  end
  state.timer = state.timer or assert(vim.uv.new_timer())
  state.timer:start(
    opts.debounce_ms,
    0,
    vim.schedule_wrap(function()
      if api.nvim_get_mode().mode:sub(1, 1) == 'i' then
        M.trigger(false)
      end
    end)
  )
end

--- Insert the shown suggestion into the buffer; returns true when one was accepted.
function M.accept()
  if M.native() then
    return vim.lsp.inline_completion.get() == true
  end
  if not M.visible() then
    return false
  end
  local edit = current_edit()
  M.clear()
  if not edit then
    return false
  end
  local lines = vim.split(edit.text, '\n', { plain = true })
  api.nvim_buf_set_text(state.bufnr, edit.srow, edit.scol, edit.erow, edit.ecol, lines)
  local row = edit.srow + #lines - 1
  local col = #lines == 1 and edit.scol + #lines[1] or #lines[#lines]
  api.nvim_win_set_cursor(0, { row + 1, col })
  state.accepted = { bufnr = state.bufnr, tick = api.nvim_buf_get_changedtick(state.bufnr) }
  return true
end

--- Show the next (`step` 1) or previous (-1) suggestion; asks again when there is only one.
function M.cycle(step)
  if M.native() then
    return vim.lsp.inline_completion.select({ count = step })
  end
  if #state.items > 1 and M.visible() then
    state.index = (state.index - 1 + step) % #state.items + 1
    render()
  else
    M.trigger(true)
  end
end

--- Hide the suggestion; returns true when one was shown.
function M.dismiss()
  local shown = M.visible()
  cancel_request()
  M.clear()
  return shown
end

local function map(bufnr, lhs, action, fallback)
  if not lhs then
    return
  end
  local desc = 'Enclave: ' .. action
  if M.native() then
    -- Neovim's own inline completion cannot tell in advance whether it will accept: try, and
    -- give the key its usual meaning when nothing happened.
    vim.keymap.set('i', lhs, function()
      local done = assert(loadstring('return require("enclave.completion").' .. action))()
      if fallback and not done then
        api.nvim_feedkeys(vim.keycode(lhs), 'n', false)
      end
    end, { buffer = bufnr, desc = desc })
    return
  end
  vim.keymap.set('i', lhs, function()
    if fallback and not M.visible() then
      return lhs
    end
    return ('<Cmd>lua require("enclave.completion").%s<CR>'):format(action)
  end, { buffer = bufnr, expr = true, replace_keycodes = true, desc = desc })
end

--- Called when the server attaches to a buffer: start suggesting as the user types.
function M.attach(client, bufnr)
  -- The server leaves inline completion out when its `completion.enabled` setting is false.
  if not opts.enabled or not client:supports_method('textDocument/inlineCompletion', bufnr) then
    return
  end
  if M.native() then
    pcall(vim.lsp.inline_completion.enable, true, { bufnr = bufnr, client_id = client.id })
  else
    local group = api.nvim_create_augroup('enclave.completion.' .. bufnr, { clear = true })
    api.nvim_create_autocmd('TextChangedI', {
      group = group,
      buffer = bufnr,
      callback = schedule_trigger,
    })
    api.nvim_create_autocmd('CursorMovedI', {
      group = group,
      buffer = bufnr,
      callback = function()
        if state.pos and not M.visible() then
          M.clear()
        end
      end,
    })
    api.nvim_create_autocmd({ 'InsertLeave', 'BufLeave' }, {
      group = group,
      buffer = bufnr,
      callback = M.dismiss,
    })
  end
  local keys = opts.keys
  map(bufnr, keys.accept, 'accept()', true)
  map(bufnr, keys.next, 'cycle(1)', false)
  map(bufnr, keys.prev, 'cycle(-1)', false)
  map(bufnr, keys.dismiss, 'dismiss()', true)
end

return M
