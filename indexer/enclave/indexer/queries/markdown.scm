; Markdown: headings (ATX and setext). The chunker cuts sections at each heading and names a
; section by its heading path ("Install > From source"). Captures: @heading.<level>.

(atx_heading (atx_h1_marker)) @heading.1
(atx_heading (atx_h2_marker)) @heading.2
(atx_heading (atx_h3_marker)) @heading.3
(atx_heading (atx_h4_marker)) @heading.4
(atx_heading (atx_h5_marker)) @heading.5
(atx_heading (atx_h6_marker)) @heading.6
(setext_heading (setext_h1_underline)) @heading.1
(setext_heading (setext_h2_underline)) @heading.2
