--- Explanations and answers: sends enclave/explain or enclave/ask with a partialResultToken and
--- streams the `$/progress` deltas ({thinking?, markdown?}) into a floating window or a split.
--- The final response replaces the streamed text and adds the notes on what limited the
--- repository context (one "Note: ..." line each), the line that says the answer was cut at
--- chat.maxTokens (and how to raise it) when it was, and the citations, which <CR> jumps to (and
--- which also go to the quickfix list). An explanation is retitled with the lines it explained
--- (the server's `target`: the definition around the cursor when no range was given).
local M = {}

local api = vim.api
M.ns = api.nvim_create_namespace('enclave.answer') -- highlights of the "Note:" prefixes
local NOTE = 'Note: '
local CUT = 'Cut: '
local views = {} ---@type table<string, table> streaming views by progress token
local counter = 0

local View = {}
View.__index = View

local function cfg()
  local c = require('enclave').config
  return c and c.answer or require('enclave.config').defaults.answer
end

local function open_window(buf, title)
  local o = cfg()
  if o.layout == 'split' then
    vim.cmd(('botright %dsplit'):format(math.max(5, math.floor(vim.o.lines * o.height * 0.6))))
    local win = api.nvim_get_current_win()
    api.nvim_win_set_buf(win, buf)
    return win
  end
  local width = math.max(40, math.floor(vim.o.columns * o.width))
  local height = math.max(8, math.floor((vim.o.lines - 2) * o.height))
  return api.nvim_open_win(buf, true, {
    relative = 'editor',
    width = math.min(width, vim.o.columns),
    height = math.min(height, vim.o.lines - 2),
    row = math.floor((vim.o.lines - height) / 2) - 1,
    col = math.floor((vim.o.columns - width) / 2),
    border = 'rounded',
    title = ' ' .. title .. ' ',
    title_pos = 'center',
    style = 'minimal',
  })
end

function View.new(client, title)
  local self = setmetatable({}, View)
  self.client_id, self.title = client.id, title
  self.root = client.root_dir
  self.thinking, self.markdown, self.citations, self.notes = '', '', {}, {}
  self.cut = ''
  self.done, self.error, self.model = false, nil, nil
  self.deltas = 0 -- streamed $/progress values received
  -- thinking deltas (the server streams thinking a token a part) and the ms from first to last
  self.thought, self.thinking_ms, self.thinking_since = 0, 0, nil
  self.citation_lines = {}
  self.origin_win = api.nvim_get_current_win()
  self.buf = api.nvim_create_buf(false, true)
  vim.bo[self.buf].bufhidden = 'wipe'
  vim.bo[self.buf].filetype = 'markdown'
  self.win = open_window(self.buf, title)
  vim.wo[self.win].wrap = true
  vim.wo[self.win].linebreak = true
  vim.wo[self.win].foldmethod = 'manual'
  vim.wo[self.win].foldenable = true
  local kopts = { buffer = self.buf, nowait = true }
  vim.keymap.set('n', '<CR>', function()
    self:jump(api.nvim_win_get_cursor(0)[1])
  end, vim.tbl_extend('force', kopts, { desc = 'Enclave: open the citation under the cursor' }))
  vim.keymap.set('n', 'q', function()
    self:close()
  end, vim.tbl_extend('force', kopts, { desc = 'Enclave: close' }))
  api.nvim_create_autocmd('BufWipeout', {
    buffer = self.buf,
    once = true,
    callback = function()
      self:cancel()
    end,
  })
  self:render()
  return self
end

local function add_lines(out, text)
  for _, line in ipairs(vim.split(text, '\n', { plain = true })) do
    out[#out + 1] = line
  end
end

--- The status of an answer still streaming: while the model thinks (no answer text yet), how
--- long: 'thinking… 120 tokens · 12 s'; else 'streaming…'.
function M.progress(tokens, ms, answering)
  if answering or tokens == 0 then
    return 'streaming…'
  end
  local plural = tokens == 1 and '' or 's'
  return ('thinking… %d token%s · %d s'):format(tokens, plural, math.floor(ms / 1000 + 0.5))
end

--- The server's `notes` (what limited the answer's repository context) as one-line strings;
--- anything that is not a string is dropped, a missing list is empty.
function M.parse_notes(notes)
  local out = {}
  if type(notes) ~= 'table' then
    return out
  end
  for _, note in ipairs(notes) do
    if type(note) == 'string' then
      -- A buffer line cannot hold a newline; a note is one sentence anyway.
      out[#out + 1] = vim.trim((note:gsub('%s*[\r\n]+%s*', ' ')))
    end
  end
  return out
end

--- "path:start-end  symbol" for a citation or target (1-based lines; an end at column 0 of a
--- later line does not include that line).
local function place(c)
  local s, e = c.range.start.line + 1, c.range['end'].line + 1
  if c.range['end'].character == 0 and e > s then
    e = e - 1
  end
  local label = ('%s:%d-%d'):format(c.path or vim.uri_to_fname(c.uri), s, e)
  if c.symbol and c.symbol ~= '' then
    label = label .. '  ' .. c.symbol
  end
  return label
end

--- The line shown for one citation: "[n] path:start-end  symbol" (1-based lines).
function M.citation_label(n, c)
  return ('[%d] %s'):format(n, place(c))
end

--- The title of an explanation from the server's `target` (nil when it is not one).
function M.explain_title(target)
  if type(target) ~= 'table' or type(target.range) ~= 'table' then
    return nil
  end
  local ok, label = pcall(place, target)
  return ok and ('Explain ' .. label) or nil
end

function View:render()
  if not api.nvim_buf_is_valid(self.buf) then
    return
  end
  local mode = cfg().thinking
  local status = self.error and 'failed'
    or (self.done and 'done')
    or M.progress(self.thought, self.thinking_ms, self.markdown ~= '')
  local lines =
    { '# ' .. self.title, ('_%s%s_'):format(self.model and (self.model .. ' · ') or '', status) }
  local fold
  if self.thinking ~= '' and mode ~= 'hide' then
    lines[#lines + 1] = ''
    local first = #lines + 1
    lines[#lines + 1] = '## Thinking'
    add_lines(lines, self.thinking)
    fold = mode == 'fold' and { first, #lines } or nil
  end
  lines[#lines + 1] = ''
  lines[#lines + 1] = '## Answer'
  if self.error then
    lines[#lines + 1] = '**Error:** ' .. self.error
  elseif self.markdown == '' then
    lines[#lines + 1] = self.done and '_(empty answer)_' or '_waiting for the model…_'
  else
    add_lines(lines, self.markdown)
  end
  local note_lines = {}
  if #self.notes > 0 or self.cut ~= '' then
    lines[#lines + 1] = ''
    for _, note in ipairs(self.notes) do
      lines[#lines + 1] = NOTE .. note
      note_lines[#note_lines + 1] = { #lines, #NOTE }
    end
    if self.cut ~= '' then
      lines[#lines + 1] = CUT .. self.cut
      note_lines[#note_lines + 1] = { #lines, #CUT }
    end
  end
  -- Keyed by the 1-based buffer line each citation lands on (what <CR> reads from the cursor).
  self.citation_lines = {}
  if #self.citations > 0 then
    lines[#lines + 1] = ''
    lines[#lines + 1] = '## Citations (<CR> opens one)'
    for i, c in ipairs(self.citations) do
      lines[#lines + 1] = M.citation_label(i, c)
      self.citation_lines[#lines] = c
    end
  end
  vim.bo[self.buf].modifiable = true
  api.nvim_buf_set_lines(self.buf, 0, -1, false, lines)
  vim.bo[self.buf].modifiable = false
  api.nvim_buf_clear_namespace(self.buf, M.ns, 0, -1)
  for _, at in ipairs(note_lines) do
    api.nvim_buf_set_extmark(
      self.buf,
      M.ns,
      at[1] - 1,
      0,
      { end_col = at[2] - 1, hl_group = 'DiagnosticWarn' }
    )
  end
  if api.nvim_win_is_valid(self.win) then
    api.nvim_win_call(self.win, function()
      vim.cmd('silent! normal! zE')
      if fold then
        vim.cmd(('%d,%dfold'):format(fold[1], fold[2]))
      end
    end)
  end
end

--- Apply a streamed delta; renders on the next tick so bursts of deltas cost one redraw.
function View:append(value)
  if type(value) ~= 'table' or self.done then
    return
  end
  self.deltas = self.deltas + 1
  if type(value.thinking) == 'string' and value.thinking ~= '' then
    local now = vim.uv.hrtime() / 1e6
    self.thinking_since = self.thinking_since or now
    self.thought, self.thinking_ms = self.thought + 1, now - self.thinking_since
  end
  self.thinking = self.thinking .. (type(value.thinking) == 'string' and value.thinking or '')
  self.markdown = self.markdown .. (type(value.markdown) == 'string' and value.markdown or '')
  if not self.pending then
    self.pending = true
    vim.schedule(function()
      self.pending = false
      self:render()
    end)
  end
end

function View:finish(err, result)
  self.done, self.request_id = true, nil
  if err then
    self.error = err.message or vim.inspect(err)
    require('enclave').notify(self.error, vim.log.levels.ERROR)
  elseif type(result) == 'table' then
    self.markdown = type(result.markdown) == 'string' and result.markdown or self.markdown
    self.thinking = type(result.thinking) == 'string' and result.thinking or self.thinking
    self.model = type(result.model) == 'string' and result.model or nil
    self.citations = type(result.citations) == 'table' and result.citations or {}
    self.notes = M.parse_notes(result.notes)
    self.cut = type(result.cut) == 'string' and vim.trim((result.cut:gsub('%s*[\r\n]+%s*', ' ')))
      or ''
    local title = self.method == 'enclave/explain' and M.explain_title(result.target)
    if title then
      self:retitle(title)
    end
  end
  self:render()
  if #self.citations > 0 and cfg().quickfix then
    local items = {}
    for i, c in ipairs(self.citations) do
      items[i] = {
        filename = self:citation_file(c),
        lnum = c.range.start.line + 1,
        end_lnum = c.range['end'].line + 1,
        text = M.citation_label(i, c),
      }
    end
    vim.fn.setqflist({}, ' ', { title = 'Enclave: ' .. self.title, items = items })
  end
end

function View:retitle(title)
  self.title = title
  if api.nvim_win_is_valid(self.win) and api.nvim_win_get_config(self.win).relative ~= '' then
    api.nvim_win_set_config(self.win, { title = ' ' .. title .. ' ', title_pos = 'center' })
  end
end

function View:citation_file(c)
  if type(c.uri) == 'string' and c.uri ~= '' then
    return vim.uri_to_fname(c.uri)
  end
  return vim.fs.joinpath(self.root or vim.fn.getcwd(), c.path)
end

--- Open the citation shown on line `lnum` of the answer buffer.
function View:jump(lnum)
  local c = self.citation_lines[lnum]
  if not c then
    return false
  end
  local file = self:citation_file(c)
  if cfg().layout == 'float' then
    self:close()
  end
  if api.nvim_win_is_valid(self.origin_win) then
    api.nvim_set_current_win(self.origin_win)
  end
  vim.cmd.edit(vim.fn.fnameescape(file))
  local last = api.nvim_buf_line_count(0)
  api.nvim_win_set_cursor(0, { math.min(c.range.start.line + 1, last), 0 })
  return true
end

function View:cancel()
  if not self.done and self.request_id then
    local client = vim.lsp.get_client_by_id(self.client_id)
    if client then
      client:cancel_request(self.request_id)
    end
    self.done = true
  end
end

function View:close()
  self:cancel()
  if api.nvim_win_is_valid(self.win) then
    api.nvim_win_close(self.win, true)
  end
end

--- Route a `$/progress` notification; returns true when it belonged to an answer.
function M.on_progress(params)
  local view = params and views[params.token]
  if not view then
    return false
  end
  view:append(params.value)
  return true
end

--- Send `method` (enclave/explain or enclave/ask) and show the streamed answer.
--- @return table view (fields: buf, win, done, markdown, thinking, citations, notes, error)
function M.request(client, method, params, title)
  counter = counter + 1
  local token = ('enclave-answer-%d'):format(counter)
  params.partialResultToken = token
  local bufnr = api.nvim_get_current_buf()
  local view = View.new(client, title)
  view.method = method
  views[token] = view
  M.last = view
  local ok, id = client:request(method, params, function(err, result)
    views[token] = nil
    view:finish(err, result)
  end, bufnr)
  if ok then
    view.request_id = id
  else
    views[token] = nil
    view:finish({ message = 'the language server is not running' }, nil)
  end
  return view
end

return M
