// 8-bit Sklansky prefix adder written as structural assigns (test fixture).
// Generate/propagate pairs: g_L_i, p_L_i cover bits i down to a level-L boundary;
// level 0 is the bitwise g = a & b, p = a ^ b.
module sklansky8 (
  input  [7:0] a,
  input  [7:0] b,
  output [7:0] sum,
  output       cout
);
  wire g0_0, g0_1, g0_2, g0_3, g0_4, g0_5, g0_6, g0_7, p0_0, p0_1, p0_2, p0_3, p0_4, p0_5, p0_6, p0_7, g1_1, g1_3, p1_3, g1_5, p1_5, g1_7, p1_7, g2_2, g2_3, g2_6, p2_6, g2_7, p2_7, g3_4, g3_5, g3_6, g3_7;
  assign g0_0 = a[0] & b[0];
  assign p0_0 = a[0] ^ b[0];
  assign g0_1 = a[1] & b[1];
  assign p0_1 = a[1] ^ b[1];
  assign g0_2 = a[2] & b[2];
  assign p0_2 = a[2] ^ b[2];
  assign g0_3 = a[3] & b[3];
  assign p0_3 = a[3] ^ b[3];
  assign g0_4 = a[4] & b[4];
  assign p0_4 = a[4] ^ b[4];
  assign g0_5 = a[5] & b[5];
  assign p0_5 = a[5] ^ b[5];
  assign g0_6 = a[6] & b[6];
  assign p0_6 = a[6] ^ b[6];
  assign g0_7 = a[7] & b[7];
  assign p0_7 = a[7] ^ b[7];
  assign g1_1 = g0_1 | (p0_1 & g0_0);
  assign g1_3 = g0_3 | (p0_3 & g0_2);
  assign p1_3 = p0_3 & p0_2;
  assign g1_5 = g0_5 | (p0_5 & g0_4);
  assign p1_5 = p0_5 & p0_4;
  assign g1_7 = g0_7 | (p0_7 & g0_6);
  assign p1_7 = p0_7 & p0_6;
  assign g2_2 = g0_2 | (p0_2 & g1_1);
  assign g2_3 = g1_3 | (p1_3 & g1_1);
  assign g2_6 = g0_6 | (p0_6 & g1_5);
  assign p2_6 = p0_6 & p1_5;
  assign g2_7 = g1_7 | (p1_7 & g1_5);
  assign p2_7 = p1_7 & p1_5;
  assign g3_4 = g0_4 | (p0_4 & g2_3);
  assign g3_5 = g1_5 | (p1_5 & g2_3);
  assign g3_6 = g2_6 | (p2_6 & g2_3);
  assign g3_7 = g2_7 | (p2_7 & g2_3);
  assign sum[0] = p0_0;
  assign sum[1] = p0_1 ^ g0_0;
  assign sum[2] = p0_2 ^ g1_1;
  assign sum[3] = p0_3 ^ g2_2;
  assign sum[4] = p0_4 ^ g2_3;
  assign sum[5] = p0_5 ^ g3_4;
  assign sum[6] = p0_6 ^ g3_5;
  assign sum[7] = p0_7 ^ g3_6;
  assign cout = g3_7;
endmodule
